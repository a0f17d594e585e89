-- How many feedback spans got each verdict (label_feedback.sql).
SELECT verdict, count(*) FROM feedback_verdicts GROUP BY verdict;
