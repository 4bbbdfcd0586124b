"""Facts about smp's architectures that the params check and the model builder share (no torch here)."""

# smp archs with one decoder_channels entry per encoder stage: checked in `train`, used by the model builder
STAGE_DECODERS = ("unet", "unetplusplus", "manet")
