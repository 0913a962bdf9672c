"""Names vulture cannot see used, read (never run) by ``vulture`` (pyproject's
[tool.vulture]) in tests/test_architecture.py. Each says who uses it. Anything else
vulture finds unused is dead: use it in the product or remove it."""

# ruff: noqa: F821, B018

# Called or read by a library or a template, not by our code.
_._parse_css_string  # digest.py: premailer's hook, overridden to keep cssutils quiet
_.extend_atom  # feeds.py: feedgen extension hooks
_.extend_rss
_.extend_ns
_.fuzzy  # i18n.py: a Babel catalog message's flag
_.nameservers  # resolver.py: dnspython resolver settings
_.lifetime
_.masthead  # site.py: Chrome parts, read by the page templates
_.footer
_.prev  # site.py: ArchivePage.prev, the archive template's "older" link
_.impl  # store/schema.py: SQLAlchemy TypeDecorator hooks
_.cache_ok
_.process_result_value
_.ix_articles_no_feed_id  # store/schema.py: an Index joins its table's metadata when made
_.inherit_cache  # store/feedback.py: _AtSign, a SQLAlchemy FunctionElement and its
_._at_sign  # @compiles functions, called by SQLAlchemy's compiler per dialect
_._at_sign_postgresql

_.subscribed  # audience.py: ImportReport.subscribed, counted by setattr(report, outcome, ...)

# In progress on this session's issues: settings and APIs landed ahead of their users.
# Each is used by the product when its work lands, or removed; then its line goes.
_.create_digest  # store/ledger.py: the single digest queued for all its readers (tests, bench/digest.py)
_.verify_for  # tokens.py (newsletters: tokens that name a newsletter)
_.verify_issued
_.imap_host  # config/tables.py [bounces] IMAP mailbox (bounces)
_.imap_port
_.imap_security
_.imap_user
_.imap_password_env
_.imap_folder
_.unsuppress  # store/feedback.py (bounces)
_.return_token  # tokens.py: VERP return path (bounces)
_.webhook  # links.py: webhook URLs (bounces)
_.mx_hosts  # store/schema.py (health)
_.LEVELS  # doctor/__init__.py (health)
_._policy
_.pause_rate  # config/tables.py [deliverability] (health: the provider gate)
_.pause_after
_.ProviderGate  # deliverability/gate.py (health)
_.observe
_.pauses
_.change_status  # store/subscribers.py: since the web confirms through subscriptions only
#                  tests/test_subscriptions.py calls it (newsletters/webnl: use it or remove it)
_.get_cache_key  # render.py: jinja2's BytecodeCache calls it (an override)
_.autocommit  # store/claiming.py: psycopg's connection property, set around a commit's one simple query
