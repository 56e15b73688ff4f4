"""Scheduled automation: each user's AI agent and watchlist scraper (run by mainScheduler)."""
