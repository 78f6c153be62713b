"""Online adaptation of the click decoder from finished objects (issue 34, item 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segstudio.engine.click.adapt import (
    ADAPTED_PREFIXES,
    IMAGES_KEY,
    OPTIMIZER_KEY,
    AdaptExample,
    adapt_click_decoder,
    adapted_path,
    apply_adapted,
    decoder_state,
    load_adapted,
    prune_cache,
    reset_adapted,
    save_adapted,
)
from segstudio.engine.click.protocol import Click
from segstudio.engine.click.session import ClickSession
from segstudio.models.clicknet import ClickNet


def _example(seed=0, size=64):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
    mask = np.zeros((size, size), bool)
    y, x = rng.integers(8, 28, 2)
    mask[y:y + 24, x:x + 20] = True
    img[mask] += 150
    return AdaptExample(img, mask, clicks=[Click(int(y) + 12, int(x) + 10, True)])


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return ClickNet(pretrained=False, width=32).eval()


def test_adaptation_fits_the_finished_objects_and_leaves_the_model_alone(net):
    before = {k: v.clone() for k, v in net.state_dict().items()}
    exs = [_example(i) for i in range(3)]
    state, info = adapt_click_decoder(net, exs, seconds=120, max_steps=60, lr=1e-2, max_clicks=3)
    assert info["steps"] == 60 and info["examples"] == 3 and info["loss_last"] < info["loss_first"]
    assert set(state) == {k for k in net.state_dict() if k.startswith(ADAPTED_PREFIXES)}
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # the given model is unchanged
    adapted = apply_adapted(net, state)
    # the encoder + neck are not adapted: cached encodings stay valid
    enc_a = ClickSession(adapted, exs[0].image).enc["feats"][0]
    enc_b = ClickSession(net, exs[0].image).enc["feats"][0]
    assert torch.equal(enc_a, enc_b)

    def contrast(m):  # mean object probability inside minus outside the object, after the recorded click
        out = []
        for ex in exs:
            p = ClickSession(m, ex.image).probabilities(ex.clicks)
            out.append(p[ex.mask].mean() - p[~ex.mask].mean())
        return float(np.mean(out))

    assert contrast(adapted) > contrast(net) + 0.2


def test_adaptation_errors_and_cancel(net):
    ex = _example()
    with pytest.raises(ValueError):
        adapt_click_decoder(net, [AdaptExample(ex.image, np.zeros_like(ex.mask))])
    with pytest.raises(ValueError):
        adapt_click_decoder(net, [AdaptExample(ex.image, ex.mask[:10])])
    with pytest.raises(ValueError):
        adapt_click_decoder(net, [AdaptExample(ex.image.astype(np.float32), ex.mask)])
    state, info = adapt_click_decoder(net, [ex], cancelled=lambda: True)
    assert info["steps"] == 0 and all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())


def test_adapted_weights_save_load_reset(tmp_path, net):
    path = adapted_path(tmp_path)
    assert path == tmp_path / "labels" / "models" / "click_adapted.safetensors"
    assert load_adapted(path) is None and reset_adapted(path) is False
    state = decoder_state(net)
    save_adapted(path, state, {"steps": 3})
    back = load_adapted(path)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
    assert path.with_suffix(".json").is_file()
    assert reset_adapted(path) is True and not path.exists() and load_adapted(path) is None
    with pytest.raises(ValueError):
        save_adapted(path, {"encoder.x": torch.zeros(1)})
    path.write_bytes(b"not safetensors")
    with pytest.raises(ValueError):
        load_adapted(path)
    with pytest.raises(ValueError):
        apply_adapted(net, {"head.weight": torch.zeros(3)})


def test_adaptation_cache_encodes_each_example_once(net, monkeypatch):
    exs = [_example(i) for i in range(2)]
    calls = []
    cache: dict = {}
    import copy as _copy

    deep = _copy.deepcopy

    def counting_deepcopy(m, *a):  # count encodings on the working copy adapt_click_decoder makes
        out = deep(m, *a)
        if isinstance(m, ClickNet):
            enc = out.encode_image
            out.encode_image = lambda x: (calls.append(1), enc(x))[1]
        return out

    monkeypatch.setattr("segstudio.engine.click.adapt.copy.deepcopy", counting_deepcopy)
    adapt_click_decoder(net, exs, max_steps=1, cache=cache)
    adapt_click_decoder(net, exs + [_example(5)], max_steps=1, cache=cache)
    assert len(calls) == 3 and len([k for k in cache if k not in (OPTIMIZER_KEY, IMAGES_KEY)]) == 3
    # a second object of an image already encoded shares its encoding
    twin = AdaptExample(exs[0].image, ~exs[0].mask)
    adapt_click_decoder(net, exs + [twin], max_steps=1, cache=cache)
    assert len(calls) == 3 and cache[id(twin)][0] is cache[id(exs[0])][0]
    pruned = prune_cache(cache, [twin])
    assert set(pruned[IMAGES_KEY]) == {id(exs[0].image)} and id(exs[1]) not in pruned


def test_project_click_model_applies_the_projects_adaptation(tmp_path):
    from segstudio.engine.click.cache import project_click_model, shared_click_model

    base = shared_click_model()
    f = adapted_path(tmp_path)
    assert project_click_model(None, None) is base and project_click_model(None, f) is base  # nothing adapted
    state = decoder_state(base)
    state["head.bias"] = state["head.bias"] + 1.0
    save_adapted(f, state)
    m = project_click_model(None, f)
    assert m is not base and torch.equal(m.state_dict()["head.bias"], state["head.bias"])
    assert project_click_model(None, f) is m  # loaded once per file version
    f.write_bytes(b"junk, not safetensors")
    assert project_click_model(None, f) is base  # unreadable: ignored


def test_adaptations_continue_one_optimizer(net):
    """With a cache, each adaptation continues the previous one's Adam (its moments and step count) instead of
    starting a fresh one, whose first steps move every decoder weight by the full rate in its gradient's sign
    direction; pruning the cache to the kept objects drops encodings, never the optimizer."""
    exs = [_example(i) for i in range(2)]
    cache: dict = {}
    state1, _ = adapt_click_decoder(net, exs, max_steps=5, seconds=1e9, cache=cache)
    assert int(cache[OPTIMIZER_KEY]["state"][0]["step"]) == 5
    first_moment = cache[OPTIMIZER_KEY]["state"][0]["exp_avg"].clone()
    cache = prune_cache(cache, exs[:1])
    assert OPTIMIZER_KEY in cache and id(exs[0]) in cache and id(exs[1]) not in cache
    adapt_click_decoder(apply_adapted(net, state1), exs, max_steps=3, seconds=1e9, cache=cache)
    assert int(cache[OPTIMIZER_KEY]["state"][0]["step"]) == 8
    assert not torch.equal(cache[OPTIMIZER_KEY]["state"][0]["exp_avg"], first_moment)
    fresh: dict = {}
    adapt_click_decoder(net, exs, max_steps=3, seconds=1e9, cache=fresh)
    assert int(fresh[OPTIMIZER_KEY]["state"][0]["step"]) == 3  # a new cache starts a new optimizer


def test_guard_falls_back_to_the_shipped_decoder_while_adaptation_scores_worse():
    from segstudio.engine.click.adapt import AdaptGuard
    from segstudio.engine.click.adapt_policy import KEEP_OBJECTS

    g = AdaptGuard()
    assert g.use_adapted  # nothing scored: the adapted decoder (the shipped one until the first adaptation)
    g.add(5, 5)  # clicks needed: adapted, unadapted
    g.add(None, 3)  # an object that could not be scored
    assert g.use_adapted and len(g.scores) == 1
    g.add(20, 4)
    assert not g.use_adapted
    for _ in range(KEEP_OBJECTS):  # the adapted decoder catches up: only the last KEEP_OBJECTS pairs count
        g.add(3, 6)
    assert g.use_adapted and len(g.scores) == KEEP_OBJECTS
    again = AdaptGuard.from_json(g.to_json())
    assert again.use_adapted == g.use_adapted and len(again.scores) == KEEP_OBJECTS


def test_clicks_needed_and_each_object_scored_once(net):
    from segstudio.engine.click.adapt import SCORED_KEY, AdaptGuard, clicks_needed, guard_new_examples

    ex = _example(0)
    n = clicks_needed(net, ex, max_clicks=5)
    assert n is not None and 1 <= n <= 5
    assert clicks_needed(net, AdaptExample(ex.image, np.zeros_like(ex.mask))) is None  # an empty mask
    full = AdaptExample(ex.image, np.ones_like(ex.mask))
    assert clicks_needed(net, full, target_iou=0.0) == 1.0  # any answer reaches IoU 0
    cache: dict = {}
    g = AdaptGuard()
    exs = [_example(i) for i in range(3)]
    assert guard_new_examples(g, net, net, exs[:2], cache) == 2
    assert guard_new_examples(g, net, net, exs, cache) == 1  # only the new one
    assert len(g.scores) == 3 and all(a == b for a, b in g.scores)  # the same decoder twice scores the same
    assert cache[SCORED_KEY] == {id(e): e for e in exs}
    assert prune_cache(cache, exs[2:])[SCORED_KEY] == {id(exs[2]): exs[2]}
    # an entry under a new example's id that holds another example (a freed one's id reused) does not count
    stale = {SCORED_KEY: {id(exs[0]): _example(5)}}
    assert guard_new_examples(g, net, net, exs[:1], stale) == 1 and stale[SCORED_KEY][id(exs[0])] is exs[0]
    assert prune_cache({SCORED_KEY: {id(exs[1]): exs[0]}}, exs)[SCORED_KEY] == {}


def test_project_click_model_respects_the_guard(tmp_path):
    from segstudio.engine.click.adapt import AdaptGuard
    from segstudio.engine.click.cache import project_click_model, shared_click_model

    base = shared_click_model()
    f = adapted_path(tmp_path)
    state = decoder_state(base)
    state["head.bias"] = state["head.bias"] + 1.0
    worse = AdaptGuard([[12, 6]])
    save_adapted(f, state, {"guard": worse.to_json()})
    assert project_click_model(None, f) is base  # needs more clicks: the shipped decoder answers them
    kept = project_click_model(None, f, respect_guard=False)  # ... and the adapted one goes on training
    assert kept is not base and torch.equal(kept.state_dict()["head.bias"], state["head.bias"])
    save_adapted(f, state, {"guard": AdaptGuard([[5, 6]]).to_json()})
    assert project_click_model(None, f) is not base
