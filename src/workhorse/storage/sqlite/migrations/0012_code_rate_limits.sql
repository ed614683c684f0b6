-- Rate limits on task starts per code, shared by every runner (domain/rate.py): the
-- limit in starts per second, and the token bucket claims take from under the code's
-- claim lock. NULL rate_limit: no limit. NULL rate_tokens: the bucket is full.
ALTER TABLE codes ADD COLUMN rate_limit REAL;
ALTER TABLE codes ADD COLUMN rate_tokens REAL;
ALTER TABLE codes ADD COLUMN rate_at REAL;
