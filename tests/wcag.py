"""Checks run inside a page in chromium (tests/test_digest_clients.py, tests/test_web_browser.py)."""

# WCAG 2.1 AA (1.4.3): 4.5:1 for text, 3:1 for large text (24 px, or 18.66 px bold).
CONTRAST = """() => {
    const parse = c => { const m = c.match(/[\\d.]+/g).map(Number); return m.length > 3 ? m : [...m, 1]; };
    const lum = ([r, g, b]) => { const f = v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
                                 return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
    const canvas = matchMedia('(prefers-color-scheme: dark)').matches &&
        getComputedStyle(document.documentElement).colorScheme.includes('dark') ? [18, 18, 18, 1] : [255, 255, 255, 1];
    const background = el => { for (; el; el = el.parentElement) { const c = parse(getComputedStyle(el).backgroundColor);
                                   if (c[3] > 0) return c; } return canvas; };
    const failures = [];
    let checked = 0;
    for (const el of document.querySelectorAll('body *')) {
        if (el.closest('.preheader') || !el.getClientRects().length) continue;
        const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
        if (!own && el.tagName !== 'LI') continue;  // an <li> draws its bullet in its own colour
        const style = getComputedStyle(el), fg = parse(style.color), bg = background(el);
        const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x), ratio = (a + 0.05) / (b + 0.05);
        const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
        const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
        checked++;
        if (fg[3] < 1 || ratio < needed)
            failures.push(`${el.tagName}.${el.className} ${style.color} on ${bg}: ${ratio.toFixed(2)} < ${needed}`);
    }
    return {checked, failures};
}"""
