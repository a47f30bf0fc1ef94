"""The random-feature model: closed forms against explicit computations, and the study end to end."""
import numpy as np
import pandas as pd
import pytest

from membench.studies import rfnn_model as rfnn
from membench.cli import main


def _small(p=24, d=3, n=4, m=60, levels=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    rf = rfnn.RandomFeatures(rng.standard_normal((p, d)), rfnn.karras_levels(levels, 0.05, 5.0), 1.0)
    probs = [rfnn.level_problem(rf, X, k, m, np.random.default_rng([seed, k])) for k in range(levels)]
    return X, rf, probs


def test_gd_closed_form_equals_explicit_iteration():
    _, _, probs = _small()
    pr = probs[1]
    A = np.zeros_like(pr.C)
    eta = pr.lr(0.7)
    for _ in range(25):
        A = A - eta * pr.grad(A)
    np.testing.assert_allclose(rfnn.gd_weights(pr, 25, 0.7), A, rtol=1e-9, atol=1e-12)


def test_gd_long_time_is_the_least_squares_fit():
    _, _, probs = _small()
    pr = probs[2]  # N = 240 noisy points > p = 24 features: U is invertible
    A_star = -np.linalg.solve(pr.U, pr.C.T).T / pr.sigma
    np.testing.assert_allclose(rfnn.gd_weights(pr, 1e15), A_star, rtol=1e-6, atol=1e-8)
    # the loss's gradient vanishes there, and the training loss only falls along the way
    np.testing.assert_allclose(pr.grad(A_star), 0, atol=1e-8)
    losses = [pr.loss(rfnn.gd_weights(pr, t)) for t in (0, 1, 10, 100, 1e4, 1e8)]
    assert all(a >= b - 1e-12 for a, b in zip(losses, losses[1:]))
    assert losses[0] == pytest.approx(pr.z2)  # A = 0: the loss is E||z||^2


def test_gram_matrix_is_the_feature_covariance():
    X, rf, _ = _small()
    rng = np.random.default_rng(5)
    pr = rfnn.level_problem(rf, X, 0, 10, rng)
    rng = np.random.default_rng(5)
    Z = rng.standard_normal((len(X), 10, X.shape[1])).reshape(-1, X.shape[1])
    F = np.tanh(rf.W @ (np.repeat(X, 10, axis=0) + rf.sigmas[0] * Z).T / np.sqrt(1 + rf.sigmas[0] ** 2)
                / np.sqrt(rf.d)) / np.sqrt(rf.p)
    np.testing.assert_allclose(pr.U, F @ F.T / F.shape[1], rtol=1e-10)
    np.testing.assert_allclose(pr.U @ pr.V, pr.V * pr.lam, atol=1e-12)
    assert np.all(np.diff(pr.lam) <= 1e-15)  # descending


def test_spectral_split_and_weight_split_known_answers():
    lam = np.array([5.0, 4.0, 3.0, 1e-4, 9e-5, 8e-5])
    assert rfnn.spectral_split(lam) == 3
    pr = rfnn.LevelProblem(1.0, np.diag(lam), np.zeros((2, 6)), 0.0, lam, np.eye(6))
    M = np.zeros((2, 6))
    M[0, 0], M[1, 4] = 3.0, 4.0  # ||M||^2 = 9 on a large direction, 16 on a small one
    w = rfnn.weight_split(M, pr, 3)
    assert w["frac_small"] == pytest.approx(16 / 25)
    assert w["energy_frac_small"] == pytest.approx(16 * 9e-5 / (16 * 9e-5 + 9 * 5.0))


def test_student_before_distillation_is_the_one_step_euler_teacher():
    X, rf, probs = _small()
    A = np.stack([rfnn.gd_weights(pr, 100) for pr in probs])
    cd = rfnn.consistency_distill(rf, A, X, probs, iterations=0)
    z = np.random.default_rng(1).standard_normal((50, X.shape[1]))
    np.testing.assert_allclose(rfnn.consistency_sample(rf, cd.B, z, 1), rfnn.euler_teacher(rf, A, z, 1))
    np.testing.assert_array_equal(cd.B[0], 0)  # boundary: f at sigma_min is the identity
    # with training, the consistency loss falls and snapshots are taken where asked
    cd = rfnn.consistency_distill(rf, A, X, probs, iterations=40, batch=64, snapshot_at=(0, 20, 40))
    assert sorted(cd.snapshots) == [0, 20, 40]
    np.testing.assert_array_equal(cd.snapshots[40], cd.B)
    assert np.mean(cd.losses[-10:]) < np.mean(cd.losses[:10])


def _distill_one(rf, A, X, probs, iterations, batch, lr_scale, mu, seed, snapshot_at, init):
    """The CD loop written plainly for one student (no shared features): the reference for the lockstep one."""
    rng = np.random.default_rng([seed, 7])
    B = A.copy() if init == "teacher" else np.zeros_like(A)
    B[0] = 0.0
    target, losses, snaps = B.copy(), [], {0: B.copy()} if 0 in snapshot_at else {}
    for it in range(1, iterations + 1):
        total = 0.0
        for k in range(1, len(rf.sigmas)):
            x0 = X[rng.integers(0, len(X), size=batch)]
            xk = x0 + rf.sigmas[k] * rng.standard_normal(x0.shape)
            y = rfnn.consistency_fn(rf, target, rfnn.teacher_step(rf, A, xk, k), k - 1)
            F = rf.phi(xk, k)
            s2 = rf.sigmas[k] ** 2
            resid = xk + s2 * (B[k] @ F).T - y
            total += float(np.mean(np.sum(resid**2, axis=1)))
            B[k] -= lr_scale / (2 * s2 * s2 * probs[k].lam[0]) * (2.0 / batch * s2 * resid.T @ F.T)
        target = B.copy() if mu == 0 else mu * target + (1 - mu) * B
        losses.append(total / (len(rf.sigmas) - 1))
        if it in snapshot_at:
            snaps[it] = B.copy()
    return B, losses, snaps


@pytest.mark.parametrize("mu", [0.0, 0.5])
def test_students_in_lockstep_equal_separate_runs(mu):
    X, rf, probs = _small()
    A = np.stack([rfnn.gd_weights(pr, 1e4) for pr in probs])
    kw = dict(iterations=12, batch=32, lr_scale=0.5, mu=mu, seed=3, snapshot_at=(0, 5, 12))
    inits = ("teacher", "zero")
    for init, got in zip(inits, rfnn.consistency_distill_many(rf, A, X, probs, inits=inits, **kw)):
        B, losses, snaps = _distill_one(rf, A, X, probs, init=init, **kw)
        np.testing.assert_array_equal(got.B, B)  # bit for bit: the sharing changes no arithmetic
        assert got.losses == losses
        assert sorted(got.snapshots) == sorted(snaps)
        for it, S in snaps.items():
            np.testing.assert_array_equal(got.snapshots[it], S)
    one = rfnn.consistency_distill(rf, A, X, probs, init="zero", **kw)
    np.testing.assert_array_equal(one.B, _distill_one(rf, A, X, probs, init="zero", **kw)[0])


def test_population_probe_equals_the_explicit_loss():
    X, rf, probs = _small()
    k, draws, seed = 2, 5, 4
    rng = np.random.default_rng([seed, 11, k])
    Z = rng.standard_normal((len(X) * draws, X.shape[1]))
    F = rf.phi(np.repeat(X, draws, axis=0) + rf.sigmas[k] * Z, k)
    probe = rfnn.population_probe(rf, k, X, draws, seed)
    for t in (1, 100, 1e6):
        A = np.stack([rfnn.gd_weights(pr, t) for pr in probs])
        want = float(np.mean(np.sum((rf.sigmas[k] * (A[k] @ F).T + Z) ** 2, axis=1)))
        assert probe.loss(A[k]) == want
        assert rfnn.population_loss(rf, A, k, X, draws, seed) == want


def test_memorization_and_frechet_distance_known_answers():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 6)) * 3
    copies = X[rng.integers(0, 20, 200)] + 1e-3 * rng.standard_normal((200, 6))
    m = rfnn.memorization(copies, X)
    assert m["memorized"] == 1.0 and m["ci_low"] > 0.98
    far = rng.standard_normal((200, 6)) * 3
    assert rfnn.memorization(far, X)["memorized"] < 0.1
    a = rng.standard_normal((20000, 3))
    b = rng.standard_normal((20000, 3)) + np.array([1.0, 2.0, 0.0])
    assert rfnn.frechet_distance(a, b) == pytest.approx(5.0, abs=0.1)  # ||mu||^2 with equal covariances


def test_rfnn_study_quick(tmp_path):
    out = tmp_path / "rfnn"
    assert main(["rfnn", "--quick", "--quiet", "--out", str(out)]) == 0
    for f in ("spectrum.csv", "teacher_time.csv", "distill.csv", "weights_by_level.csv", "sizes.csv",
              "spectrum.png", "training_time.png", "distill.png", "weights_by_level.png", "record.json"):
        assert (out / f).is_file(), f
    tt = pd.read_csv(out / "teacher_time.csv")
    assert (np.diff(tt.train_loss) <= 1e-9).all()  # gradient descent on a quadratic never goes up
    assert ((tt.ci_low <= tt.memorized) & (tt.memorized <= tt.ci_high)).all()
    d = pd.read_csv(out / "distill.csv")
    assert set(d.model) == {"teacher", "control", "student", "student-independent"}  # the last starts at B = 0
    s0 = d[(d.model == "student") & (d.cd_iterations == 0) & (d.steps == 1)].iloc[0]
    c1 = d[(d.model == "control") & (d.steps == 1)].iloc[0]
    assert s0.memorized == c1.memorized and s0.fd_population == pytest.approx(c1.fd_population)


def test_study_bad_input_is_one_line(capsys):
    assert main(["study", "rfnnn"]) == 1
    assert main(["rfnn", "--set", "p=0"]) == 1
    assert main(["rfnn", "--set", "colour=blue"]) == 1
    assert main(["rfnn", "--set", "novalue"]) == 1
    assert main(["rfnn", "--set", "data=imagenet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5 and all(line.startswith("membench: error:") for line in err)
    assert "did you mean rfnn" in err[0]


def test_list_studies(capsys):
    assert main(["list", "studies"]) == 0
    out = capsys.readouterr().out
    for name in ("rfnn", "distill-length", "training-time", "sweep", "seeds", "known-answer"):
        assert name in out
