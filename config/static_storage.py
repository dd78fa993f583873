"""Static files storage: WhiteNoise's hashed, compressed names once ``collectstatic`` has run.

After ``manage.py collectstatic`` every ``{% static %}`` URL carries a content hash
(``graphiql.min.3f2a….js``), so WhiteNoise serves it with a far-future, immutable
``Cache-Control`` and a pre-compressed (gzip) body: a deploy needs no proxy or CDN.

Before any ``collectstatic`` (``make run``, the tests, a checkout started with
DEBUG off) there is no manifest, and Django's manifest storage would make every
page that uses ``{% static %}`` fail with ``ValueError``. Here the URL falls back
to the file's plain name instead, which WhiteNoise serves from the apps' static
folders (``WHITENOISE_USE_FINDERS``, set in the settings exactly when the
manifest is missing) with its short default cache lifetime.

Source-map comments are left as they are: the vendored GraphiQL files name maps
that are not shipped (``make vendor`` fetches the minified files only), and
Django's default patterns would make ``collectstatic`` fail on the missing
``.map`` files. A browser only asks for a map when its developer tools are open.
"""

from django.contrib.staticfiles.storage import ManifestStaticFilesStorage, StaticFilesStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage


def _without_source_maps(patterns: tuple) -> tuple:
    def is_source_map(pattern: object) -> bool:
        text = pattern[0] if isinstance(pattern, tuple) else pattern
        return "sourceMappingURL" in str(text)

    return tuple(
        (extension, tuple(p for p in rules if not is_source_map(p)))
        for extension, rules in patterns
    )


class HashedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed names from the manifest; plain names while there is none."""

    patterns = _without_source_maps(ManifestStaticFilesStorage.patterns)

    def url(self, name: str | None, force: bool = False) -> str:
        if not self.hashed_files and not force:  # no manifest: collectstatic never ran
            return StaticFilesStorage.url(self, name)
        return super().url(name, force)
