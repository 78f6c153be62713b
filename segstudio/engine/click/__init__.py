"""Click-to-segment: click simulation, the NoC protocol, GrabCut driven by clicks, training and an encode-once
inference session for :class:`segstudio.models.clicknet.ClickNet`. The package holds no code: import its modules.

Protocol and training follow RITM (Sofiiuk, Petrov, Konushin, "Reviving Iterative Training with Mask
Guidance for Interactive Segmentation", ICIP 2022, arXiv:2102.06583):

* objects are connected components of one class covering at least 0.5 % of the image
  (:func:`~segstudio.engine.click.protocol.object_masks`);
* a click goes to the interior point of the largest error region, i.e. the false-negative or
  false-positive pixel farthest from the region's boundary (Euclidean distance transform, the image border
  counting as boundary), positive for a false negative, negative for a false positive
  (:func:`~segstudio.engine.click.protocol.next_click`; RITM's ``Clicker`` and the protocol of Xu et al., "Deep Interactive Object
  Selection", CVPR 2016). The first click, with an empty prediction, lands on the object's most interior
  point;
* clicks are encoded as disks of radius 5 px (RITM Sec. 3.1), plus the previous mask (Sec. 3.2);
* NoC@k is the number of clicks until IoU >= k, capped at ``max_clicks`` (20) when never reached
  (:func:`~segstudio.engine.click.protocol.noc`);
* training is iterative (RITM Sec. 3.2, Alg. 1): a few clicks are added from the model's own errors
  without gradient, feeding its previous prediction back, before the step that is back-propagated.

Deviation: RITM's normalized focal loss is replaced by BCE + soft IoU (:func:`~segstudio.engine.click.train.click_loss`), and the
ImageNet encoder is kept frozen by default so a CPU can train the decoder in minutes (see the model card).

Modules: :mod:`~segstudio.engine.click.protocol` (objects, click simulation, IoU / NoC, guidance maps, GrabCut
from clicks; numpy and OpenCV, no torch), :mod:`~segstudio.engine.click.session` (the shipped click model and the
encode-once :class:`~segstudio.engine.click.session.ClickSession` the GUI's Click tool runs) and
:mod:`~segstudio.engine.click.train` (training a click model, ``scripts/train_click_model.py``),
:mod:`~segstudio.engine.click.objects` (the class-agnostic object bank of every ``../shared`` train split: per-class
components, unions of adjacent parts, copy-paste; issue 34), :mod:`~segstudio.engine.click.adapt` (adapting the
click decoder to the objects a person finished, Kontogianni et al., ECCV 2020, kept with the project) and
:mod:`~segstudio.engine.click.cache` (the shared model, the project's adapted model, the GUI's encoding cache).
"""
