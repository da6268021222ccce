"""The napari plugin: widgets, a reader and sample data around the public API.

Installed with the optional extra (``pip install -e ".[napari]"``) and found by napari through the
``napari.manifest`` entry point, which names :file:`napari.yaml` (an npe2 manifest):

- **Segment nuclei** (:func:`._widgets.segment_nuclei_widget`): an image layer -> a Labels layer
  ``"<image> nuclei"`` with the per-nucleus measurements as its ``features``, computed by
  :func:`segmentation.segment` in a worker thread.
- **Fine-tune on these labels** (:func:`._widgets.finetune_widget`): an image layer and a
  corrected Labels layer -> :func:`segmentation.finetune` -> a model file, in a worker thread.
- a reader for the ``<name>_labels.tif`` files of ``segmentation segment`` (:mod:`._reader`),
  with the ``<name>_nuclei.csv`` beside them as the layer's features;
- sample data: images of the bundled sample with their expert annotations (:mod:`._sample_data`).

Nothing here imports napari, magicgui or Qt at module level: the manifest's commands import in
the main environment, and only building a widget loads the GUI (:mod:`._gui`).
"""
