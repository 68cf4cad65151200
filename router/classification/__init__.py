"""Classification: features, the routing model, its calibration, training and evaluation."""
