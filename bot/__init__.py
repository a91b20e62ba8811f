"""genrebot: the Discord adapter over genre_model."""
