import torch, logging
torch.set_num_threads(1)
logging.basicConfig(level=logging.WARNING, format="LOG %(levelname)s %(message)s")
from pluralign.methods import METHODS, PreferenceModel, UserVector
from pluralign.data import read_preferences
from pluralign.eval.compare import compare
train = read_preferences("data/pets/train.jsonl")
test = read_preferences("data/pets/test.jsonl", split="test")
a = PreferenceModel.from_pretrained("/tmp/reviewQ_runs/pal")
b = METHODS["pal-a"](epochs=3, seed=1).fit(train, progress=False)
u = test.rows[-1]["user_id"]
ctx = test.subset(lambda r: r.get("role") == "context" and r["user_id"] == u)
q = test.subset(lambda r: r.get("role") == "query" and r["user_id"] == u)
va = a.infer_user(ctx)
import json
va2 = UserVector.from_dict(json.loads(json.dumps(va.to_dict())))
pa = a.pair_proba(q, user=va2); pb_wrong = b.pair_proba(q, user=va2); pb_right = b.pair_proba(q, user=b.infer_user(ctx))
acc = lambda p: float((p > 0.5).float().mean())
print("G run A's vector on run A:", acc(pa), " on run B (accepted silently):", acc(pb_wrong), " B's own vector:", acc(pb_right))
print("G mean abs prob diff wrong vs right:", float((pb_wrong - pb_right).abs().mean()))
bt = PreferenceModel.from_pretrained("/tmp/reviewQ_runs/bt")
r8 = compare(a, bt, test, shots=8); rneg = compare(a, bt, test, shots=-1)
print("H compare shots=8 unseen acc_a", r8["unseen"]["accuracy_a"], " shots=-1 (no error):", rneg["unseen"]["accuracy_a"], rneg["shots"])
