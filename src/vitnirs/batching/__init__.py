"""Batches for pretraining: sampling, padding, masking, augmentation.

The batch contract (every producer and consumer of a pretraining batch follows it)::

    batch = {
        "values":      float32 (B, L)  per-spectrum normalised signal, (x - mean) / std over its
                                       real points; 0 at padding
        "wavelengths": float32 (B, L)  true wavelengths in nm (never normalised); 1000.0 at padding
        "valid":       bool    (B, L)  True = a real point, False = padding
        "mask":        bool    (B, L)  MAE mask of the points: True = masked; the tokenizer drops
                                       the tokens it covers from the encoder input and the
                                       decoder predicts them; never True at padding
        "level":       float32 (B, 2)  what the normalisation removed: (mean, log(std))
        "corrected_values": float32 (B, L)  the spectrum minus its cached AsLS baseline,
                                       normalised the same way (its own mean/std); 0 at padding
        "corrected_level":  float32 (B, 2)  (mean, log(std)) of the corrected spectrum
        "clean_values": float32 (B, L)  the clean view: the same points before the nuisance
                                       augmentations (drift, scatter, noise, shift, ...), normalised
                                       the same way; ``values`` itself when nothing is augmented
        "clean_level":  float32 (B, 2)  (mean, log(std)) of the clean view
        "dataset_id":  int64   (B,)    index into the run's dataset list
        "is_synthetic": bool   (B,)
        "meta":        int64   (B, K)  metadata category ids (instrument, measurement mode,
                                       signal type; 0 = unknown)
        "view2":       dict | absent   a second view of the same spectra (same keys but view2),
                                       for the invariance loss: another augmentation of the same
                                       real spectrum, or the paired view of a synthetic sample
    }

Padding conventions: L is the longest spectrum of the batch; shorter spectra are padded at
the end. Masks are written once: ``valid`` True = real point; ``mask`` True = masked.
"""
