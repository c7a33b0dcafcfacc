"""Every acquisition reports exactly its constructor options (used in run logs)."""

import inspect

import pytest

from mfbo.acquisition import ACQUISITIONS


@pytest.mark.parametrize("name", list(ACQUISITIONS))
def test_options_mirror_the_constructor(name):
    cls = ACQUISITIONS[name]
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    options = cls().options()
    assert list(options) == params
    assert options == {p: inspect.signature(cls.__init__).parameters[p].default for p in params}
