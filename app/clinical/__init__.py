"""What clinicians do: predict, history, case detail, reviews and the review queue."""
