"""The newsroom's plain-text export parses to exactly the article it describes."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from publisher.sources.export import parse_export

SEOUL = ZoneInfo("Asia/Seoul")
SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_8e4dca2d4b25ece8.txt"


def parse(text: str):
    return parse_export(text, article_id="seeds/x.txt", source="seeds", tz=SEOUL)


def test_seed_article_parses_exactly():
    article, warnings = parse(SEED.read_text(encoding="utf-8"))
    assert warnings == []
    assert article.title == "OpenAI to open office in Seoul"
    assert article.published == datetime(2025, 5, 26, 14, 50, tzinfo=SEOUL)
    assert article.published.utcoffset() == timedelta(hours=9)
    assert [a.name for a in article.authors] == ["Jeong Jae-hong"]
    assert article.authors[0].email is None  # "[email protected]" is a placeholder
    assert article.credits == (
        "Translated from the JoongAng Ilbo using generative AI and edited by Korea JoongAng Daily staff.",
    )
    assert article.body.count("<p>") == 12
    assert article.body.startswith("<p>OpenAI plans to open its first office in Seoul")
    assert article.body.endswith("in terms of total users.</p>")
    for absent in ("Translated from", "with the Korea JoongAng Daily", "email protected", "BY JEONG"):
        assert absent not in article.body


def test_several_authors_and_a_real_address():
    text = "Title\nPublished: 2025-05-28T09:30:00+09:00\nBody.\nBY KIM MIN-JI, PARK SEO-YEON AND LEE JUN-HO [kim@example.com]\n"
    article, _ = parse(text)
    assert [a.name for a in article.authors] == ["Kim Min-ji", "Park Seo-yeon", "Lee Jun-ho"]
    single, _ = parse("Title\nPublished: 2025-05-28\nBody.\nBY KIM MIN-JI [kim@example.com]\n")
    assert single.authors[0].email == "kim@example.com"


def test_offset_in_the_date_wins_over_the_site_timezone():
    article, _ = parse("T\nPublished: 2025-05-28T09:30:00+00:00\nBody\n")
    assert article.published.utcoffset() == timedelta(0)
    assert article.published == datetime(2025, 5, 28, 9, 30, tzinfo=UTC)


def test_crlf_and_bom_and_updated_line():
    article, _ = parse(
        "\ufeffTitle\r\nPublished: 30 May 2025 11:00\r\nUpdated: 30 May 2025 14:20\r\nOne.\rTwo.\r\n"
    )
    assert article.title == "Title"
    assert article.updated == datetime(2025, 5, 30, 14, 20, tzinfo=SEOUL)
    assert article.body == "<p>One. Two.</p>"  # a lone CR in a CRLF file is no line break


def test_a_lone_cr_inside_an_lf_files_title_line_is_a_space():
    article, warnings = parse("Council debates\r<script> signage\nPublished: 26 May. 2025, 14:50\nBody.\n")
    assert article.title == "Council debates <script> signage"
    assert article.published == datetime(2025, 5, 26, 14, 50, tzinfo=SEOUL)
    assert (article.body, warnings) == ("<p>Body.</p>", [])


def test_cr_only_files_still_split_on_cr():
    article, _ = parse("Old Mac\rPublished: 26 May. 2025, 14:50\rOne.\rTwo.\r")
    assert (article.title, article.body) == ("Old Mac", "<p>One.</p>\n<p>Two.</p>")


def test_missing_date_is_a_warning_not_a_failure():
    article, warnings = parse("Title only\nA paragraph.\n")
    assert article.published is None
    assert warnings == ["no Published: date"]
