"""The speed benchmark of the main job."""
