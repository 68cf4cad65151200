"""Classification: features, the routing model, calibration, training, evaluation."""
