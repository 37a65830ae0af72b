"""The sharded sweep on Dask: the same weights as a sequential run, resumable, fault tolerant, never mixed."""
import os
import signal

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from helpers import sweep  # noqa: E402
from helpers.attribution import IG, SHAP, word_weights  # noqa: E402
from helpers.encoders import load_encoder  # noqa: E402

ROSTER = [{"name": "tiny-random-bert", "pooling": "mean"}, {"name": "tiny-random-roberta", "pooling": "mean"}]
OPTIONS = sweep.Options(n_steps=4, projections=4, max_evals=40)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def tasks(data_dir):
    return sweep.plan(ROSTER, datasets=("stsb", "wiki"), methods=("ig", "shap"), shard_size=3, n_sentences=7,
                      data_dir=data_dir)


def _sequential(tasks):
    frames = []
    for (row, name, pooling, dataset, method), group in pd.DataFrame(
            [(t.row, t.name, t.pooling, t.dataset, t.method, t) for t in tasks],
            columns=["row", "name", "pooling", "dataset", "method", "task"]).groupby(
            ["row", "name", "pooling", "dataset", "method"], sort=False):
        ts = list(group["task"])
        sentences = pd.DataFrame({"sentence_id": [i for t in ts for i in t.sentence_ids],
                                  "text": [x for t in ts for x in t.texts]})
        spec = (IG(n_steps=OPTIONS.n_steps, projections=OPTIONS.projections) if method == "ig"
                else SHAP(max_evals=OPTIONS.max_evals))
        w = word_weights(load_encoder(name, pooling=pooling), sentences, spec, cache=False, progress=False)
        frames.append(w.assign(model=row, dataset=dataset, method=method))
    return pd.concat(frames)[sweep.SHARD_COLUMNS]


# Dask workers run torch single-threaded; a different thread count sums floats in another order (~1e-8),
# so "the same weights" is equality to 1e-6 relative.
def _sorted(frame):
    return frame.sort_values(["model", "dataset", "method", "sentence_id", "word_index"]).reset_index(drop=True)


def test_plan_covers_every_model_dataset_method_and_shard(tasks):
    assert len(tasks) == 2 * 2 * 2 * 3  # 7 sentences in shards of 3
    assert {len(t.sentence_ids) for t in tasks} == {3, 1}


def test_sweep_equals_sequential_and_resumes(client, tasks, tmp_path):
    out = str(tmp_path / "sweep")
    first = sweep.run(tasks, out, OPTIONS, client=client, progress=False)
    assert (first["status"] == "computed").all() and len(first) == len(tasks)
    union = sweep.load(out)
    expected = _sequential(tasks)
    pd.testing.assert_frame_equal(_sorted(union), _sorted(expected), check_exact=False, rtol=1e-6, atol=1e-9)
    again = sweep.run(tasks, out, OPTIONS, client=client, progress=False)
    assert (again["status"] == "skipped").all()  # a finished sweep computes nothing
    # a damaged shard is found and recomputed; the others are not touched
    damaged = sweep.shard_path(out, tasks[5])
    with open(damaged, "wb") as fh:
        fh.write(b"not parquet")
    repaired = sweep.run(tasks, out, OPTIONS, client=client, progress=False)
    assert repaired["status"].tolist().count("computed") == 1
    assert repaired.loc[repaired["status"] == "computed", "path"].iloc[0] == damaged
    pd.testing.assert_frame_equal(_sorted(sweep.load(out)), _sorted(expected), check_exact=False, rtol=1e-6, atol=1e-9)
    # other settings on the same output: an error naming what differs, never a silent mix
    with pytest.raises(sweep.SweepMismatch, match="n_steps"):
        sweep.run(tasks[:1], out, sweep.Options(n_steps=8, projections=4, max_evals=40), client=client,
                  progress=False)


def test_sweep_survives_a_killed_worker(tasks, tmp_path):
    out = str(tmp_path / "sweep")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    with distributed.Client(cluster) as c:
        futures = c.map(sweep.compute_shard, tasks, output=out, options=OPTIONS, pure=False, retries=3)
        done = []
        for future in distributed.as_completed(futures):
            done.append(future.result()["path"])
            if len(done) == 3:
                break
        stamps = {p: os.stat(p).st_mtime_ns for p in done}
        assert sum(f.done() for f in futures) < len(futures)  # the kill lands mid-sweep
        victim = list(c.scheduler_info()["workers"])[0]
        pid = c.run(os.getpid, workers=[victim])[victim]  # the worker's process, through the cluster API
        os.kill(pid, signal.SIGKILL)  # fault injection: the worker dies mid-sweep (its nanny starts a new one)
        results = c.gather(futures)
    cluster.close()
    assert len(results) == len(tasks)
    assert all(os.stat(p).st_mtime_ns == t for p, t in stamps.items())  # finished shards are never recomputed
    pd.testing.assert_frame_equal(_sorted(sweep.load(out)), _sorted(_sequential(tasks)), check_exact=False,
                                  rtol=1e-6, atol=1e-9)


def test_weights_by_row_feed_the_regression(client, tasks, tmp_path, data_dir):
    from helpers.information import word_information
    from helpers.roster import roster_results

    out = str(tmp_path / "sweep")
    sweep.run(tasks, out, OPTIONS, client=client, progress=False)
    given = sweep.weights_by_row(sweep.load(out), "stsb")
    sentences = pd.DataFrame({"sentence_id": [i for t in tasks if t.dataset == "stsb" and t.row == tasks[0].row
                                              and t.method == "ig" for i in t.sentence_ids],
                              "text": [x for t in tasks if t.dataset == "stsb" and t.row == tasks[0].row
                                       and t.method == "ig" for x in t.texts]})
    rows = [{"row": t.row, "name": t.name, "pooling": t.pooling, "base": None} for t in tasks[:1]]
    table, weights, _ = roster_results(rows, sentences, sentences, "stsb", methods=("ig",), n_boot=10,
                                       precomputed=given, progress=False)
    key = (rows[0]["row"], "ig")
    assert np.allclose(weights[key]["weight"], given[key]["weight"])
    with pytest.raises(ValueError, match="lack 1 of the sentences"):
        roster_results(rows, pd.concat([sentences, pd.DataFrame({"sentence_id": [10**9], "text": ["new ."]})]),
                       sentences, "stsb", methods=("ig",), n_boot=10, precomputed=given, progress=False)


def test_the_command_refuses_a_bad_argument_in_one_line_naming_it(capsys):
    """An empty roster crashed with KeyError 'estimated_seconds', bad JSON with a traceback, and --workers 0 fell back
    to every core in silence: each is now one line on stderr naming the argument, and exit status 2."""
    tiny = '[{"name": "tiny-random-bert", "pooling": "mean"}]'
    for argv, fragment in ((["--roster", "[]"], "roster is an empty list"),
                           (["--roster", "[oops"], "--roster is not valid JSON"),
                           (["--roster", tiny, "--workers", "0"], "workers must be a whole number >= 1"),
                           (["--roster", tiny, "--n-sentences", "0"], "n_sentences must be")):
        assert sweep.main(argv + ["--plan"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and fragment in err and "Traceback" not in err, err
