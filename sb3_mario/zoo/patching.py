"""
How sb3-mario changes another library's behaviour (rl-zoo3's, Optuna's): the one mechanism every
patch goes through, so that after an upgrade of those libraries the patches are checked in one place
(:func:`sb3_mario.zoo.install` lists them all).
"""

import functools
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

PATCH_MARK = "sb3_mario_patch"


def is_patched(function: Any) -> bool:
    """Whether ``function`` is one of sb3-mario's replacements."""
    return getattr(function, PATCH_MARK, False)


def patch(owner: Any, name: str, wrap: Callable[[Any], Callable]) -> None:
    """
    Replace ``owner.name`` (or ``owner[name]`` when ``owner`` is a mapping) by ``wrap(original)``,
    unless it was already replaced: importing the hook twice must not wrap twice.

    :param owner: A class, module or mapping.
    :param name: The attribute or key to replace; a missing key's original is ``None``.
    :param wrap: Builds the replacement from the original.
    """
    is_mapping = isinstance(owner, MutableMapping)
    original = owner.get(name) if is_mapping else getattr(owner, name)
    if is_patched(original):
        return
    replacement = wrap(original)
    if original is not None:
        functools.update_wrapper(replacement, original)
    setattr(replacement, PATCH_MARK, True)
    if is_mapping:
        owner[name] = replacement
    else:
        setattr(owner, name, replacement)


def unpatched(function: Callable) -> Callable:
    """The original behind one of sb3-mario's replacements (``function`` itself if it is none)."""
    return function.__wrapped__ if is_patched(function) else function


@contextmanager
def swapped(owner: Any, name: str, value: Any) -> Iterator[None]:
    """
    ``owner.name`` is ``value`` inside the ``with`` block and the original again after it, for a
    change that must last one call of the library only.

    :param owner: A class or module.
    :param name: The attribute to swap.
    :param value: Its value during the block.
    """
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)
