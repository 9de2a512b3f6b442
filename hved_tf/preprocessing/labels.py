"""Label conversion per BraTS convention, both ways (the tables live in hved_tf.modalities).

"brats2018" (BraTS 2018-2021) writes labels 0, 1, 2, 4 and "brats2023" writes 0, 1, 2, 3; the
networks use training classes 0..3 (background, necrotic/non-enhancing core, oedema, enhancing).
"""
from hved_tf.modalities import (LABEL_CONVENTIONS, from_training_labels, region_masks,
                                region_masks_on_disk, to_training_labels)

__all__ = ["LABEL_CONVENTIONS", "to_training_labels", "from_training_labels", "region_masks",
           "region_masks_on_disk"]
