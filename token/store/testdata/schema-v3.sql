-- application_id 0x67687331, format_version 3

-- index attrs_type_value on attrs
CREATE INDEX attrs_type_value ON attrs(type, value);

-- index object_keys_user on object_keys
CREATE INDEX object_keys_user ON object_keys(user);

-- index objects_owner on objects
CREATE INDEX objects_owner ON objects(owner);

-- index shares_user on shares
CREATE INDEX shares_user ON shares(user, object_id);

-- index sqlite_autoindex_meta_1 on meta

-- index sqlite_autoindex_objects_1 on objects

-- index sqlite_autoindex_quorum_keys_1 on quorum_keys

-- index sqlite_autoindex_quorum_values_1 on quorum_values

-- index sqlite_autoindex_users_1 on users

-- table attrs on attrs
CREATE TABLE attrs (
	object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
	type      INTEGER NOT NULL,
	value     BLOB NOT NULL,
	PRIMARY KEY (object_id, type)
) WITHOUT ROWID;

-- table audit on audit
CREATE TABLE audit (
	stream TEXT NOT NULL,
	seq    INTEGER NOT NULL CHECK (seq >= 0),
	record BLOB NOT NULL,
	mac    BLOB NOT NULL,
	PRIMARY KEY (stream, seq)
) WITHOUT ROWID;

-- table class_counts on class_counts
CREATE TABLE class_counts (
	value BLOB PRIMARY KEY NOT NULL,
	n     INTEGER NOT NULL
) WITHOUT ROWID;

-- table key_quorum on key_quorum
CREATE TABLE key_quorum (
	object_id INTEGER PRIMARY KEY NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
	use_value    INTEGER NOT NULL CHECK (use_value >= 0 AND use_value <= 8),
	manage_value INTEGER NOT NULL CHECK (manage_value >= 0 AND manage_value <= 8)
);

-- table logins on logins
CREATE TABLE logins (
	instance INTEGER PRIMARY KEY NOT NULL,
	user     TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	pid      INTEGER NOT NULL,
	started  INTEGER NOT NULL,
	boot     TEXT NOT NULL,
	pidns    TEXT NOT NULL,
	since    INTEGER NOT NULL
);

-- table meta on meta
CREATE TABLE meta (
	key   TEXT PRIMARY KEY NOT NULL,
	value NOT NULL
);

-- table object_keys on object_keys
CREATE TABLE object_keys (
	object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
	user      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	value     BLOB NOT NULL,
	PRIMARY KEY (object_id, user)
) WITHOUT ROWID;

-- table objects on objects
CREATE TABLE objects (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	unique_id TEXT NOT NULL UNIQUE,
	owner     TEXT REFERENCES users(name),
	private   INTEGER NOT NULL,
	version   INTEGER NOT NULL
);

-- table quorum_keys on quorum_keys
CREATE TABLE quorum_keys (
	user       TEXT PRIMARY KEY NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	public_key BLOB NOT NULL
);

-- table quorum_tokens on quorum_tokens
CREATE TABLE quorum_tokens (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	service   TEXT NOT NULL,
	user      TEXT NOT NULL,
	approval  BLOB NOT NULL,
	created   INTEGER NOT NULL,
	expires   INTEGER NOT NULL,
	approvals BLOB NOT NULL DEFAULT x''
);

-- table quorum_values on quorum_values
CREATE TABLE quorum_values (
	service TEXT PRIMARY KEY NOT NULL,
	value   INTEGER NOT NULL CHECK (value >= 1)
);

-- table sealed on sealed
CREATE TABLE sealed (
	object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
	type      INTEGER NOT NULL,
	value     BLOB NOT NULL,
	PRIMARY KEY (object_id, type)
) WITHOUT ROWID;

-- table shares on shares
CREATE TABLE shares (
	object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
	user      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	PRIMARY KEY (object_id, user)
) WITHOUT ROWID;

-- table sqlite_sequence on sqlite_sequence
CREATE TABLE sqlite_sequence(name,seq);

-- table token on token
CREATE TABLE token (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	label   TEXT NOT NULL,
	serial  TEXT NOT NULL,
	created INTEGER NOT NULL
, escrow_key BLOB);

-- table users on users
CREATE TABLE users (
	name          TEXT PRIMARY KEY NOT NULL CHECK (name <> '' AND name = lower(name)),
	role          INTEGER NOT NULL CHECK (role IN (1, 2)),
	kdf_time      INTEGER NOT NULL,
	kdf_memory    INTEGER NOT NULL,
	kdf_threads   INTEGER NOT NULL,
	salt          BLOB NOT NULL,
	wrapped_key   BLOB NOT NULL,
	failed_logins INTEGER NOT NULL DEFAULT 0,
	locked        INTEGER NOT NULL DEFAULT 0
, key_version INTEGER NOT NULL DEFAULT 1, public_key BLOB NOT NULL DEFAULT x'', escrow BLOB NOT NULL DEFAULT x'', legacy BLOB NOT NULL DEFAULT x'');

-- trigger class_counts_delete on attrs
CREATE TRIGGER class_counts_delete AFTER DELETE ON attrs WHEN OLD.type = 0 BEGIN
	UPDATE class_counts SET n = n - 1 WHERE value = OLD.value;
END;

-- trigger class_counts_insert on attrs
CREATE TRIGGER class_counts_insert AFTER INSERT ON attrs WHEN NEW.type = 0 BEGIN
	INSERT INTO class_counts (value, n) VALUES (NEW.value, 1) ON CONFLICT (value) DO UPDATE SET n = n + 1;
END;

-- trigger class_counts_update on attrs
CREATE TRIGGER class_counts_update AFTER UPDATE OF type, value ON attrs WHEN OLD.type = 0 OR NEW.type = 0 BEGIN
	UPDATE class_counts SET n = n - 1 WHERE OLD.type = 0 AND value = OLD.value;
	INSERT INTO class_counts (value, n) SELECT NEW.value, 1 WHERE NEW.type = 0 ON CONFLICT (value) DO UPDATE SET n = n + 1;
END;
