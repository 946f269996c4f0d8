"""The research workflow after conversion: cross-validation runner (:mod:`.cv`), comparison report
(:mod:`.report`) and BraTS challenge export (:mod:`.export`)."""
