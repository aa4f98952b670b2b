"""The post-event digest: sessions from the schedule, posts assigned to them, and more."""
