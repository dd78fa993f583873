"""Loading a row into a model instance without ``Model.__init__``'s per-field walk.

Django's ``Model.from_db`` (the documented hook for customising model loading:
https://docs.djangoproject.com/en/5.2/ref/models/instances/#customizing-model-loading)
builds every fetched row by calling the class: when a query loads only some
columns (the GraphQL optimizer's ``.only()``) it first expands the row to one
value per concrete field, checking each field's name against the loaded list,
then ``__init__`` walks all of them again, sends ``pre_init``/``post_init`` and
sets each loaded value through its descriptor. Listing 100 notifications with
their SMS builds 200 instances that way: about a millisecond of the request's
CPU, where a ``values()`` read of the same columns costs none (issue 21's
profile; the API's floor reads value dicts).

``load_from_db`` builds the same instance directly: a new object, a fresh
``ModelState`` marked as loaded from ``db``, and each loaded column written to
the instance ``__dict__``, which is exactly what ``__init__``'s ``setattr``
does for a fresh instance when the class attribute is Django's plain
``DeferredAttribute`` (no ``__set__``) or ``ForeignKeyDeferredAttribute``
(whose ``__set__`` only drops a cached related object, and a fresh instance
has none). It keeps Django's own path, unchanged, whenever that equivalence
is not certain: a model that overrides ``__init__`` or ``__new__``, any
``pre_init`` or ``post_init`` receiver for the class (an ``ImageField``'s
dimensions, a host's tracker), or a loaded column whose descriptor is anything
else (a file field, a custom descriptor).
"""

from collections.abc import Collection
from typing import Any, cast

from django.db import models
from django.db.models.base import ModelState
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init

_PLAIN_DESCRIPTORS = (DeferredAttribute, ForeignKeyDeferredAttribute)

#: Per model class: the attnames whose value ``load_from_db`` may write directly
#: (None: the class itself needs Django's path).
_plain_attnames: dict[type, frozenset[str] | None] = {}
_UNKNOWN = object()


def _attnames_for(cls: type[models.Model]) -> frozenset[str] | None:
    """Work out and remember ``_plain_attnames[cls]`` (``load_from_db`` looks it up)."""
    plain: frozenset[str] | None = None
    if cls.__init__ is models.Model.__init__ and cls.__new__ is object.__new__:
        names = set()
        for field in cls._meta.concrete_fields:
            descriptor = next(
                (k.__dict__[field.attname] for k in cls.__mro__ if field.attname in k.__dict__),
                None,
            )
            if type(descriptor) in _PLAIN_DESCRIPTORS:
                names.add(field.attname)
        plain = frozenset(names)
    _plain_attnames[cls] = plain
    return plain


def _init_receivers(cls: type) -> bool:
    """Whether a ``pre_init``/``post_init`` receiver would see ``cls``'s instances.

    ``load_from_db`` asks only when the process has such a receiver at all (the
    signals' own receiver lists, read without a look-up per class).
    """
    return pre_init.has_listeners(cls) or post_init.has_listeners(cls)


def load_from_db(
    cls: Any, db: str | None, field_names: Collection[str], values: Collection[Any], **kwargs: Any
) -> Any:
    """``Model.from_db`` without ``__init__`` where that changes nothing (module docstring).

    ``field_names`` names ``values`` one for one (Django passes the loaded
    columns' attnames in the row's order, all of them or the loaded subset).
    """
    # Called once per instance (200 times to list 100 notifications with their SMS):
    # the cache is read here (worked out on a miss), the receiver test asks the class
    # only when the process has a receiver at all, and the lengths are compared once.
    found = _plain_attnames.get(cls, _UNKNOWN)
    plain = _attnames_for(cls) if found is _UNKNOWN else cast("frozenset[str] | None", found)
    if (
        kwargs  # a newer Django's keyword options (fetch_mode): its own path
        or plain is None
        or len(field_names) != len(values)
        or not plain.issuperset(field_names)
        or ((pre_init.receivers or post_init.receivers) and _init_receivers(cls))
    ):
        return models.Model.from_db.__func__(cls, db, field_names, values, **kwargs)  # type: ignore[attr-defined]
    new = cls.__new__(cls)
    state = new._state = ModelState()
    state.adding = False
    state.db = db
    new.__dict__.update(zip(field_names, values))  # noqa: B905  (lengths compared above)
    return new
