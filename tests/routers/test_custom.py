"""The custom family: user classes load by dotted path, bad ones are refused clearly, and they round-trip
through a saved artifact."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from features.fast import FastFeaturizer, FastParams
from routers import artifact
from routers.base import RouterError
from routers.custom import CustomParams, CustomRouter
from routers.dataset import TrainingSet
from routers.registry import family_class, load_custom

PROMPTS = [f"what is {a} plus {b}" for a in range(6) for b in range(3)] + [
    f"write a python function that sorts {n} lists" for n in range(18)
]
USER_MODULE = '''
"""A user's routers, as a user would write them."""
from routers.base import Router


class NotARouter:
    family = "custom"


class NoPredict(Router):
    family = "custom"

    def _fit(self, train, valid):
        pass
'''


def _train(featurizer: FastFeaturizer) -> TrainingSet:
    """Arithmetic prompts: only "math" succeeds; coding prompts: only "code" does."""
    math = np.array([p.startswith("what") for p in PROMPTS])
    quality = np.column_stack([math, ~math]).astype(np.float64)
    return TrainingSet(
        prompt_ids=tuple(str(i) for i in range(len(PROMPTS))),
        prompts=tuple(PROMPTS),
        models=("math", "code"),
        quality=quality,
        cost=np.tile([0.001, 0.002], (len(PROMPTS), 1)),
        weight=np.ones_like(quality),
        features=featurizer.transform(PROMPTS),
    )


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"user_routers_{tmp_path.name}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_the_example_loads_by_dotted_path_in_both_spellings() -> None:
    assert load_custom("routers.custom:CustomRouter") is CustomRouter
    assert load_custom("routers.custom.CustomRouter") is CustomRouter
    assert family_class("custom") is CustomRouter


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_such_package.routers:Mine", "cannot be imported"),
        ("routers.custom:NoSuchClass", "cannot be imported"),
        ("CustomRouter", "must be a dotted path"),
    ],
)
def test_paths_that_do_not_import_are_refused(path: str, message: str) -> None:
    with pytest.raises(RouterError, match=message):
        load_custom(path)


def test_classes_that_do_not_implement_the_interface_are_refused(user_module: str) -> None:
    with pytest.raises(RouterError, match=r"must subclass routers\.base\.Router"):
        load_custom(f"{user_module}:NotARouter")
    with pytest.raises(RouterError, match=r"does not implement.*_predict"):
        load_custom(f"{user_module}:NoPredict")


def test_the_example_learns_per_cluster_quality() -> None:
    featurizer = FastFeaturizer(FastParams(components=4, min_df=1)).fit(PROMPTS)
    router = CustomRouter(CustomParams(clusters=2, shrinkage=0.0)).fit(_train(featurizer))
    quality, cost = router.predict(featurizer.transform(["what is 7 plus 1", "write a python function"]))
    assert quality.argmax(axis=1).tolist() == [0, 1]
    np.testing.assert_allclose(cost, [[0.001, 0.002], [0.001, 0.002]])


def test_a_saved_custom_router_loads_back_through_its_class_path(tmp_path: Path) -> None:
    featurizer = FastFeaturizer(FastParams(components=4, min_df=1)).fit(PROMPTS)
    router = CustomRouter(CustomParams(clusters=3), seed=7).fit(_train(featurizer))
    artifact.save(tmp_path / "a", router, featurizer)
    loaded = artifact.load(tmp_path / "a")
    assert loaded.meta["class"] == "routers.custom:CustomRouter"
    assert isinstance(loaded.router, CustomRouter) and loaded.router.params == router.params
    assert loaded.router.seed == 7
    features = featurizer.transform(PROMPTS)
    np.testing.assert_array_equal(loaded.router.predict(features).quality, router.predict(features).quality)
