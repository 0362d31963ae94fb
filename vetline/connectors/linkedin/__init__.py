"""LinkedIn connector (Posts, Social Actions and Images APIs through linkedin-api-client)."""
