"""Facebook Pages connector and the Graph API helpers shared with Instagram."""
