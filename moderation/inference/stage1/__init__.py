"""Stage 1 of the COEF-VQ cascade: a cheap text classifier that decides confident items itself and
escalates uncertain ones to the VLM. Pure model code (numpy, scipy, sklearn; no database):

* ``inputs``: the one function that turns an item (a processed video or a KuaiMod record, both as a
  ``ContentBundle``) into what stage 1 reads;
* ``model``: features, the stacked binary head, the multi-class head, fitting, saving and loading;
* ``routing``: calibrated confidence, risk–coverage curves and the cut for a target accuracy;
* ``selection``: nested cross-validation (every choice made on inner folds only).

Database reads and writes (training from trusted labels, the active model) live in the inference
wing's ``services`` and ``selectors``.
"""
