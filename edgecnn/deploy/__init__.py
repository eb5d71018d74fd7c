"""Deploy: choose the bundle a device should run (device side: runtime, data and leaves only, no TensorFlow).

`candidates` turns bundles into candidates with their accuracy facts, `measurements` replaces proxy latency with
what a device measured (`edgecnn bench --save`), `rank` judges and orders them, `output` writes the deploy
directory. Exporting missing candidates and measuring them here is the command's job (edgecnn/commands/deploy.py).
"""

from edgecnn.deploy.candidates import Candidate, candidate_from_bundle, missing_candidate
from edgecnn.deploy.rank import choose, judge

__all__ = ["Candidate", "candidate_from_bundle", "choose", "judge", "missing_candidate"]
