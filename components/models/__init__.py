"""Models: CMD-HAR and the baselines it is compared with (plain torch)."""
