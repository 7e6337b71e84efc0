"""The checks prediction makes of its arguments (``pluralign.methods.inputs``), through the public API, where a
mutation audit found the suite silent: each test names the mutant it kills. Tiny inline embedding rows, no
backbone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pluralign.methods import METHODS, UserVector

ROWS = [{"chosen_embedding": c, "rejected_embedding": r, "user_id": u}
        for c, r, u in [([1.0, 0.0], [0.0, 1.0], "u0"), ([0.0, 2.0], [2.0, 0.0], "u0"),
                        ([0.0, 1.0], [1.0, 0.0], "u1"), ([2.0, 0.0], [0.0, 2.0], "u1")]]
A = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
B = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 2.0]])


@pytest.fixture(scope="module")
def pal():
    return METHODS["pal-a"](epochs=1, k=2, seed=0).fit(ROWS, progress=False)


def test_a_ragged_list_is_no_user_vector() -> None:
    """Mutant: as_float_tensor catches TypeError only. torch says ValueError for a ragged list, which escaped
    without the argument's name."""
    with pytest.raises(TypeError, match=r"^UserVector.mean must be a tensor or a list of numbers \(got list: "
                                        r"expected sequence of length 2"):
        UserVector([[1, 2], [3]])


def test_a_user_vector_of_integers_or_float64_is_float32(pal) -> None:
    """Mutant: as_float_tensor keeps the input's dtype. An int64 vector then met float32 weights in the network."""
    assert UserVector([1, 0]).mean.dtype == torch.float32
    assert UserVector(np.array([1.0, 0.0])).mean.dtype == torch.float32
    width = pal.population_user().mean.shape[0]
    one_hot = [1] + [0] * (width - 1)
    torch.testing.assert_close(pal.prefer_proba(None, A, B, user=UserVector(one_hot)),
                               pal.prefer_proba(None, A, B, user=UserVector([float(x) for x in one_hot])))


def test_a_user_vector_is_one_dimensional(pal) -> None:
    """Mutant: checked_user_vector compares the last dimension only. A [1, K] or [rows, K] vector was broadcast
    over the rows (a batch of users where the API promises one)."""
    width = pal.population_user().mean.shape[0]
    for shape in [(1, width), (3, width)]:
        with pytest.raises(ValueError, match=rf"^pal-a: a user vector of shape \({shape[0]}, {width}\); this run's "
                                             rf"users are vectors of width {width}"):
            pal.prefer_proba(None, A, B, user=UserVector(torch.zeros(shape)))


def test_labelled_pairs_as_the_user_are_inferred_as_one_user(pal) -> None:
    """Mutant: is_user_list takes a list of records for per-row users; it then asked for one user per row
    ("4 users for 3 rows")."""
    torch.testing.assert_close(pal.prefer_proba(None, A, B, user=ROWS[:2]),
                               pal.prefer_proba(None, A, B, user=pal.infer_user(ROWS[:2])))


def test_a_tuple_of_user_ids_is_one_user_per_row(pal) -> None:
    """Mutant: is_user_list takes lists only; a tuple of ids went to infer_user as if it were labelled pairs."""
    users = ("u0", "u1", "u0")
    torch.testing.assert_close(pal.prefer_proba(None, A, B, user=users),
                               pal.prefer_proba(None, A, B, user=list(users)))


def test_a_mixed_list_is_not_called_a_list_of_numbers(pal) -> None:
    """Mutant: is_user_list looks at the first entry only, and called [0.5, "u0"] a list of numbers."""
    with pytest.raises(TypeError, match=r"^pal-a: user=float must be a user id"):
        pal.prefer_proba(None, A[:2], B[:2], user=[0.5, "u0"])


def test_prompt_embeddings_of_width_one_are_required() -> None:
    """Mutant: the prompt check reads dims[0] > 1. A run fitted on 1-wide prompt vectors took prompts=None and
    failed deep in the network."""
    model = METHODS["bt"](epochs=1, hidden=[]).fit([{**r, "prompt_embedding": [1.0]} for r in ROWS],
                                                   progress=False)
    with pytest.raises(TypeError, match=r"^bt: the run was fitted with prompt embeddings of width 1; pass prompts "
                                        r"as a \[rows, 1\] tensor \(got NoneType\)$"):
        model.prefer_proba(None, A, B)


@pytest.fixture(scope="module")
def bt_on_prompts():
    return METHODS["bt"](epochs=1, hidden=[]).fit(
        [{**r, "prompt_embedding": [float(i), 1.0]} for i, r in enumerate(ROWS)], progress=False)


def test_a_scalar_tensor_is_refused_with_its_shape(bt_on_prompts) -> None:
    """Mutant: the shape check reads dim() > 2. A 0-d tensor then failed on shape[1] with an IndexError."""
    with pytest.raises(ValueError, match=r"^bt: a has shape \(\); expected \[rows, 2\]$"):
        bt_on_prompts.prefer_proba(A, torch.tensor(1.0), B)


def test_a_row_count_mismatch_names_the_first_argument(bt_on_prompts) -> None:
    """Mutant: the row count to match is the previous argument's, not the first's: the message named b."""
    with pytest.raises(ValueError, match=r"^bt: prompts has 2 rows and a has 3; give one row per pair$"):
        bt_on_prompts.prefer_proba(A[:2], A, B)


def test_float64_embeddings_predict_as_float32_ones(bt_on_prompts) -> None:
    """Mutant: embedding tensors keep their dtype. float64 rows met float32 weights ("expected both ... same
    dtype")."""
    torch.testing.assert_close(bt_on_prompts.prefer_proba(A.double(), A.double(), B.double()),
                               bt_on_prompts.prefer_proba(A, A, B))


def test_prompt_embeddings_are_checked_for_nan(bt_on_prompts) -> None:
    """Mutant: the NaN check skips prompts. A NaN prompt gave a NaN probability with no error."""
    prompts = A.clone()
    prompts[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"^bt: prompts\[1\] holds NaN or inf$"):
        bt_on_prompts.prefer_proba(prompts, A, B)


def test_numpy_embeddings_ids_and_vectors_are_read_as_torch_and_python_ones(pal) -> None:
    """Researchers hold embeddings and ids in numpy (and pandas): an array of embeddings was refused as "text",
    an int64 id or an array of ids as "not preference rows"; a float array is still no user vector."""
    pandas = pytest.importorskip("pandas")
    expected = pal.prefer_proba(None, A, B, user="u1")
    assert torch.equal(pal.prefer_proba(None, A.numpy(), B.numpy(), user="u1"), expected)
    assert torch.equal(pal.prefer_proba(None, A.numpy().astype(np.float64), B.numpy(), user="u1"), expected)
    per_row = pal.prefer_proba(None, A, B, user=["u0", "u1", "u1"])
    assert torch.equal(pal.prefer_proba(None, A, B, user=np.array(["u0", "u1", "u1"])), per_row)
    assert torch.equal(pal.prefer_proba(None, A, B, user=pandas.Series(["u0", "u1", "u1"])), per_row)
    with pytest.raises(TypeError, match=r"^pal-a: user=ndarray must be a user id, a UserVector or a few labelled "
                                        r"pairs \(wrap a raw vector as UserVector\(mean\)\)$"):
        pal.prefer_proba(None, A, B, user=np.zeros(2))


def test_integer_ids_of_numpy_are_the_reader_s_ids() -> None:
    """np.int64(3) and an int array of ids name users "3" (as the reader reads an integer id column)."""
    rows = [dict(r, user_id=int(r["user_id"][1:]) + 3) for r in ROWS]  # users 3 and 4
    model = METHODS["pal-a"](k=2, pref_dim=2, hidden=[], epochs=2, batch_size=4, seed=np.int64(0)).fit(
        rows, progress=False)
    assert model.user_ids_ == ["3", "4"] and model.get_config()["seed"] == 0 and type(model.get_config()["seed"]) is int
    assert torch.equal(model.prefer_proba(None, A, B, user=np.int64(4)), model.prefer_proba(None, A, B, user="4"))
    assert torch.equal(model.prefer_proba(None, A, B, user=np.array([3, 4, 4])),
                       model.prefer_proba(None, A, B, user=["3", "4", "4"]))


def test_a_user_vector_of_another_method_is_refused(pal) -> None:
    """A VPL latent as wide as PAL-A's weights was used as them without a word; a vector with no method (a raw
    UserVector(mean)) is still taken as it is."""
    with pytest.raises(ValueError, match=r"^pal-a: a user vector of vpl; infer the user with this model$"):
        pal.prefer_proba(None, A, B, user=UserVector(torch.tensor([0.5, 0.5]), method="vpl"))
    raw = pal.prefer_proba(None, A, B, user=UserVector(torch.tensor([0.5, 0.5])))
    assert torch.equal(raw, pal.prefer_proba(None, A, B, user=UserVector(torch.tensor([0.5, 0.5]), method="pal-a")))


def test_pair_proba_is_prefer_proba_on_rows(pal) -> None:
    """Rows (here the training rows, embeddings) scored for a user: the same numbers as prefer_proba's columns."""
    a = torch.tensor([r["chosen_embedding"] for r in ROWS])
    b = torch.tensor([r["rejected_embedding"] for r in ROWS])
    for user in ("u0", None, ["u0", "u0", "u1", "u1"]):
        assert torch.equal(pal.pair_proba(ROWS, user=user), pal.prefer_proba(None, a, b, user=user))
