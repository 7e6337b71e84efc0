"""``center_features``: the training rows' mean vectors subtracted from every input, on every path (fit,
prediction from tensors or text, few-shot, save/load, the tuned backbone)."""

import pytest
import torch

from conftest import two_group_rows
from pluralign.data import PreferenceSet
from pluralign.data.features import FeatureCenter
from pluralign.data.synthetic import build_benchmark
from pluralign.methods import METHODS, PreferenceModel


SMALL = {"pal-a": dict(k=2), "vpl": dict(latent_dim=2, hidden=[8], encoder_hidden=[8], encoder_width=8)}


def shifted(rows: list[dict], by: list[float]) -> list[dict]:
    return [{**r, "chosen_embedding": [x + s for x, s in zip(r["chosen_embedding"], by)],
             "rejected_embedding": [x + s for x, s in zip(r["rejected_embedding"], by)]} for r in rows]


def test_feature_center_holds_the_training_means_and_subtracts_them():
    train, _ = two_group_rows(n_users=3, pairs=20)
    features = METHODS["bt"]().featurize(PreferenceSet.from_rows(train))
    center = FeatureCenter.of(features)
    chosen, rejected = features.chosen, features.rejected
    assert torch.allclose(center.response, (chosen.sum(0) + rejected.sum(0)) / (2 * len(chosen)), atol=1e-6)
    assert center.prompt.shape == (0,)  # no prompt features: nothing to centre
    centred = center(features)
    assert torch.allclose(torch.cat([centred.chosen, centred.rejected]).mean(0), torch.zeros(4), atol=1e-6)
    assert torch.equal(centred.user, features.user)


@pytest.mark.parametrize("method", ["pal-a", "vpl"])
def test_a_centred_model_predicts_as_one_trained_on_centred_rows(method, tmp_path):
    """Shifting every vector by a constant changes nothing for a centred model: it fits, predicts, adapts and
    reloads as the uncentred model does on the unshifted rows."""
    train, test = two_group_rows(n_users=4, pairs=40)
    config = dict(epochs=3, seed=0, center_features=True, **SMALL[method])
    mean = FeatureCenter.of(METHODS[method]().featurize(PreferenceSet.from_rows(train))).response.tolist()
    offset = [3.0, -2.0, 0.5, 1.0]
    centred = METHODS[method](**config).fit(shifted(train, offset), progress=False)
    plain = METHODS[method](**{**config, "center_features": False}).fit(
        shifted(train, [-m for m in mean]), progress=False)
    assert torch.allclose(centred.feature_center_.response, torch.tensor(mean) + torch.tensor(offset), atol=1e-5)
    rows = shifted(test, offset)
    context = [r for r in rows if r.get("role") == "context" and r["user_id"] == "new0"][:8]
    a, b = (torch.tensor([r[c] for r in rows]) for c in ("chosen_embedding", "rejected_embedding"))
    expected = plain.prefer_proba(None, a - torch.tensor(offset) - torch.tensor(mean),
                                  b - torch.tensor(offset) - torch.tensor(mean),
                                  user=plain.infer_user(shifted(context, [-o - m for o, m in zip(offset, mean)])))
    got = centred.prefer_proba(None, a, b, user=centred.infer_user(context))
    assert torch.allclose(got, expected, atol=1e-4)
    centred.save_pretrained(tmp_path)
    loaded = PreferenceModel.from_pretrained(tmp_path)
    assert torch.equal(loaded.feature_center_.response, centred.feature_center_.response)
    assert torch.equal(loaded.prefer_proba(None, a, b, user=loaded.infer_user(context)), got)


def test_the_tuned_backbone_centres_its_vectors_too(tmp_path):
    bench = build_benchmark("pets", seed=0, n_users=4, n_unseen_users=1, pairs_per_user=12, test_pairs_per_user=4)
    train, test = PreferenceSet.from_rows(bench.train), PreferenceSet.from_rows(bench.test)
    model = METHODS["bt"](epochs=1, hidden=[8], batch_size=16, center_features=True, finetune_layers=1,
                          finetune_epochs=1).fit(train, progress=False)
    network, center = model.network_.eval(), model.feature_center_
    ids = network.backbone.tokenize(test.column("chosen")[:4])
    prompt_ids = network.backbone.tokenize(test.column("prompt")[:4])
    with torch.no_grad():
        prompt, chosen = network.embed(prompt_ids, ids)
        assert torch.allclose(chosen, network.backbone(ids) - center.response, atol=1e-6)
        assert torch.allclose(prompt, network.backbone(prompt_ids) - center.prompt, atol=1e-6)
    model.save_pretrained(tmp_path)
    loaded = PreferenceModel.from_pretrained(tmp_path)
    columns = (test.column("prompt"), test.column("chosen"), test.column("rejected"))
    assert loaded.network_.center is loaded.feature_center_
    assert torch.equal(loaded.prefer_proba(*columns), model.prefer_proba(*columns))
