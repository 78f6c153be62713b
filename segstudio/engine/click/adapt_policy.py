"""The click model's online adaptation policy (issue 34): one source for the GUI's click tool and for
``python -m bench clicks --session``, so the benchmark's session measures what the app does.

After each object a person finishes (Enter), the click decoder continues from its last adapted state and trains on
the most recent finished objects (:func:`segstudio.engine.click.adapt.adapt_click_decoder`). A leaf module without
torch, so the GUI can read it at import time.
"""

KEEP_OBJECTS = 16
"""Finished objects an adaptation trains on: the most recent ones (a pool that follows the user's current images)."""
ADAPT_SECONDS = 3.0
"""Wall-clock seconds of one adaptation in the GUI (a worker job after each Enter); the steps stop at
:data:`MAX_STEPS` first on a fast machine."""
MAX_STEPS = 60
"""Decoder steps of one adaptation at most (the benchmark runs exactly this many: a machine-independent session)."""
LR = 1e-4
"""RAdam learning rate of the decoder during adaptation (:func:`segstudio.engine.click.adapt.adapt_click_decoder`)."""
