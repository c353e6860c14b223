"""IVR navigation: call flows (``app.ivr.flow``), menu understanding and navigators."""
