"""The click model's online adaptation policy (issue 34): one source for the GUI's click tool and for
``python -m bench clicks --session``, so the benchmark's session measures what the app does.

After each object a person finishes (Enter), the click decoder continues from its last adapted state and trains on
the most recent finished objects (:func:`segstudio.engine.click.adapt.adapt_click_decoder`). A leaf module without
torch, so the GUI can read it at import time.
"""

KEEP_OBJECTS = 128
"""Finished objects an adaptation trains on: the most recent ones. The objects of one image share its encoding
(about 2.8 MB at the 512-px side adaptation works at), so 128 objects of 4 an image cost about 90 MB; a 30-image
session of the benchmark (120 objects) keeps them all, as the run that chose the policy did."""
ADAPT_SECONDS = 3.0
"""Wall-clock seconds of one adaptation in the GUI (a worker job after each Enter); the steps stop at
:data:`MAX_STEPS` first on a fast machine."""
MAX_STEPS = 15
"""Decoder steps of one adaptation at most (the benchmark runs exactly this many: a machine-independent session).

Chosen on the car parts and JSRT val sessions (``python -m bench clicks --session``, docs/benchmarks.md): after each
object, 15 steps at 3e-4 on every object so far, with Adam continued from one adaptation to the next, cut NoC@85
from images 1-10 to 21-30 by 32 % (car parts) and 49 % (JSRT); 60 steps at 1e-4 on the last 16 objects with a
fresh optimizer each time by 23 % and 41 %; 30 steps at 1e-4 once per image by 21 % and 35 %."""
LR = 3e-4
"""Adam learning rate of the decoder during adaptation (:func:`segstudio.engine.click.adapt.adapt_click_decoder`)."""
