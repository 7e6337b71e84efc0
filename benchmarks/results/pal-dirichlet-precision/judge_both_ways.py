"""Same fits, two Dirichlet moment estimators: the per-component average (shipped until 2026-11-27, `orig` when
this ran at 5f370f8) and the pooled one (shipped since). A record of the measurement in models/pal.md; run as
`python judge_both_ways.py ideal-points,majority-minority,dirichlet-mixture,pets,attributes > same-fits.jsonl`.
Against the current code both columns use the pooled estimator unless `orig` is set to the old average."""
import sys, json, torch
from pluralign.data.synthetic import build_benchmark
from pluralign.methods import METHODS
from pluralign.methods.pal import model as pm
from pluralign.eval import evaluate
orig = pm.dirichlet_moments

def pooled(weights):
    k = weights.shape[-1]
    if len(weights) < 2: return torch.ones(k, dtype=weights.dtype)
    m, v = weights.mean(0), weights.var(0)
    if bool((v <= 1e-12).all()): return torch.ones(k, dtype=weights.dtype)
    precision = ((m * (1 - m)).sum() / v.sum().clamp_min(1e-12) - 1).clamp(1e-2, 1e4)
    return (m * precision).clamp_min(1e-3)

for bench_name in sys.argv[1].split(","):
  for method in ("pal-a", "pal-b"):
    for seed in (0, 1, 2):
        bench = build_benchmark(bench_name, seed=seed)
        model = METHODS[method](few_shot="posterior-mean", seed=seed).fit(bench.train, progress=False)
        w = model.network_.weights.all().detach()
        out = {"bench": bench_name, "method": method, "seed": seed, "m": [round(x, 3) for x in w.mean(0).tolist()],
               "alpha_avg": [round(x, 3) for x in orig(w).tolist()], "alpha_pooled": [round(x, 3) for x in pooled(w).tolist()]}
        for name, fn in (("avg", orig), ("pooled", pooled)):
            pm.dirichlet_moments = fn
            out[name] = evaluate(model, bench.test, shots=(8,))["unseen"]["8"]["accuracy"]
        pm.dirichlet_moments = orig
        print(json.dumps(out), flush=True)
