"""The research workflow after conversion: the pipeline driver every command runs nnU-Net through
(:mod:`.pipeline`), cross-validation runner (:mod:`.cv`), comparison report (:mod:`.report`) and
BraTS challenge export (:mod:`.export`)."""
