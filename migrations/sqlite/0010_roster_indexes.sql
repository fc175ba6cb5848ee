-- roster: events are pruned by age; users are listed by department heads.
CREATE INDEX events_created ON events(created_at);
CREATE INDEX user_departments_pos ON user_departments(user_id, pos);
