"""The game: fair rounds, scoring, and the leaderboard arithmetic. Headless."""
