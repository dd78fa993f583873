"""Model attributes resolved by strawberry's plain path: a getattr, not the full resolver chain.

strawberry-django marks every one of its fields "not basic", so each scalar of each
row goes through strawberry's general resolver: an ``Info`` built, the arguments
converted, the field-extension chain assembled, then ``get_result``. Listing 100
notifications resolves ~800 such fields, and that chain was most of the list's
time beyond its floor (issue 21's profile). A field that is a plain model
attribute has nothing for that chain to do, so here strawberry calls
``get_result`` directly (its path for fields without a resolver), which still
reads the value the same way (a deferred column is still loaded, in a thread
under ASGI).

A field is plain only when nothing could need the chain: no resolver, no field
extension (so no permission extension), no permission classes, no arguments, not a
relation. Anything else keeps strawberry-django's behaviour exactly; the query
optimizer still sees every field (it reads the type, not the resolver), and its
per-field hook still runs.
"""

import functools
from functools import cached_property
from typing import Any

import strawberry_django
from django.db.models.query_utils import DeferredAttribute
from strawberry_django.fields.field import StrawberryDjangoField

_NOT_LOADED = object()


class PlainAttributeField(StrawberryDjangoField):
    @property
    def is_basic_field(self) -> bool:
        """Read at schema build, once the type has set ``is_relation``."""
        return (
            self.base_resolver is None
            and not self.extensions
            and not self.permission_classes
            and not self.arguments
            and not self.is_relation
        )

    @cached_property
    def _column_attname(self) -> str | None:
        """The instance ``__dict__`` key of a plain column, else None.

        Only a descriptor that is exactly Django's ``DeferredAttribute`` reads the
        value straight from ``__dict__``; a subclass (file fields, ...) wraps it.
        """
        origin = self.origin_django_type
        model = origin.model if origin is not None else None
        if model is None or not self.is_basic_field:
            return None
        descriptor = model.__dict__.get(self.django_name or self.python_name)
        if type(descriptor) is not DeferredAttribute:
            return None
        return descriptor.field.attname

    def get_result(self, source: Any, info: Any, args: list, kwargs: dict) -> Any:
        """A loaded column's value as the descriptor returns it; else the library's way."""
        attname = self._column_attname
        if attname is not None and source is not None:
            value = source.__dict__.get(attname, _NOT_LOADED)
            if value is not _NOT_LOADED:
                return value
        return super().get_result(source, info, args, kwargs)


#: ``strawberry_django.field`` for the app's types: plain attributes take the plain path.
field = functools.partial(strawberry_django.field, field_cls=PlainAttributeField)
