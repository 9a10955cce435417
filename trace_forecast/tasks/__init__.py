"""Tasks on plain arrays (forecasting, reconstruction scoring) shared by every front end."""
