-- Fidelity suite, MariaDB source: a small web application as it is really built on MariaDB/MySQL.
-- Written for this suite. Rows come from bounded recursive CTEs or literal lists, so the content is the same on
-- every run. Loaded with the mysql client into a fresh scratch database (utf8mb4).
-- Zero dates need a sql_mode without NO_ZERO_DATE / NO_ZERO_IN_DATE (this session's only).
SET SESSION sql_mode = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';
SET SESSION time_zone = '+00:00';
SET SESSION max_recursive_iterations = 100000;

-- AUTO_INCREMENT, UNIQUE, utf8mb4 next to latin1, DATETIME(6) default, TIMESTAMP ON UPDATE, ENUM, JSON
CREATE TABLE users (
  id int unsigned NOT NULL AUTO_INCREMENT,
  email varchar(190) NOT NULL,
  display_name varchar(100) NOT NULL,
  legacy_name varchar(100) CHARACTER SET latin1 COLLATE latin1_swedish_ci DEFAULT NULL,
  status enum('active','banned','pending') NOT NULL DEFAULT 'pending',
  prefs json DEFAULT NULL,
  created_at datetime(6) NOT NULL DEFAULT current_timestamp(6),
  updated_at timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  PRIMARY KEY (id),
  UNIQUE KEY users_email_uq (email),
  KEY users_status_created_idx (status, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
INSERT INTO users (email, display_name, legacy_name, status, prefs, created_at, updated_at)
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 400)
SELECT CONCAT('user', i, '@example.com'),
       CASE i % 4 WHEN 0 THEN CONCAT('Üser ', i, ' 🎉') WHEN 1 THEN CONCAT('user ', i) WHEN 2 THEN CONCAT('名前', i) ELSE CONCAT('o''brien ', i) END,
       CASE WHEN i % 3 = 0 THEN NULL ELSE CONCAT('Caf', CHAR(233 USING latin1), ' ', i) END,
       ELT(1 + i % 3, 'active', 'banned', 'pending'),
       CASE WHEN i % 5 = 0 THEN NULL ELSE CONCAT('{"theme":"t', i % 3, '","n":', i, '}') END,
       TIMESTAMP('2021-01-01 00:00:00') + INTERVAL i * 90061 SECOND + INTERVAL i * 1001 MICROSECOND,
       TIMESTAMP('2024-01-01 00:00:00') + INTERVAL i MINUTE
FROM seq;

DELIMITER //
CREATE TRIGGER users_before_update BEFORE UPDATE ON users FOR EACH ROW
BEGIN
  SET NEW.email = LOWER(NEW.email);
END//
DELIMITER ;

-- tinyint(1) used as a small integer as well as a boolean
CREATE TABLE flags (
  id int NOT NULL,
  is_active tinyint(1) NOT NULL DEFAULT 1,
  verified boolean DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO flags VALUES (1, 0, 0), (2, 1, 1), (3, 5, NULL), (4, -1, 1), (5, 127, 0), (6, -128, NULL);

-- unsigned integers at their maxima, signed at their minima
CREATE TABLE unsigned_values (
  id int unsigned NOT NULL AUTO_INCREMENT,
  u8 tinyint unsigned, u16 smallint unsigned, u24 mediumint unsigned, u32 int unsigned, u64 bigint unsigned,
  s8 tinyint, s16 smallint, s24 mediumint, s32 int, s64 bigint,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO unsigned_values (u8, u16, u24, u32, u64, s8, s16, s24, s32, s64) VALUES
  (255, 65535, 16777215, 4294967295, 18446744073709551615, -128, -32768, -8388608, -2147483648, -9223372036854775808),
  (0, 0, 0, 0, 0, 127, 32767, 8388607, 2147483647, 9223372036854775807),
  (1, 1, 1, 1, 9223372036854775808, 0, 0, 0, 0, 9007199254740993),
  (NULL, NULL, NULL, NULL, 9007199254740993, NULL, NULL, NULL, NULL, NULL);

-- bigint keys at and above 2^53
CREATE TABLE big_keys (
  id bigint NOT NULL,
  label varchar(40) NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO big_keys VALUES (9007199254740992, '2^53'), (9007199254740993, '2^53+1'), (9223372036854775807, 'max'),
  (-9223372036854775808, 'min'), (-9007199254740993, '-(2^53+1)'), (1, 'one');

-- bigint unsigned keys up to 2^64-1
CREATE TABLE unsigned_keys (
  id bigint unsigned NOT NULL,
  label varchar(40) NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO unsigned_keys VALUES (18446744073709551615, '2^64-1'), (9223372036854775808, '2^63'), (9007199254740993, '2^53+1'), (0, 'zero');

-- bit(1), bit(12), bit(64)
CREATE TABLE bit_values (
  id int NOT NULL AUTO_INCREMENT,
  b1 bit(1) DEFAULT NULL,
  b12 bit(12) DEFAULT NULL,
  b64 bit(64) DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO bit_values (b1, b12, b64) VALUES (b'1', b'101010101010', b'1111111111111111111111111111111111111111111111111111111111111111'),
  (b'0', b'000000000000', b'0'), (NULL, b'111111111111', NULL), (b'1', b'000000000001', b'1000000000000000000000000000000000000000000000000000000000000001');

-- FLOAT and DOUBLE
CREATE TABLE float_values (
  id int NOT NULL,
  f float DEFAULT NULL,
  d double DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO float_values VALUES (1, 16777216, 16777217), (2, 0.1, 0.1), (3, 3.4e38, 1.7976931348623157e308),
  (4, 1.17549435e-38, 5e-324), (5, -1.5, -2.5), (6, 123456.789, 0.30000000000000004), (7, 16777217, 9007199254740993), (8, NULL, NULL);
INSERT INTO float_values WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 200)
SELECT 100 + i, i / 7, i / 3 FROM seq;

-- DECIMAL(65,30)
CREATE TABLE decimal_values (
  id int NOT NULL,
  d65 decimal(65,30) DEFAULT NULL,
  d10 decimal(10,2) DEFAULT NULL,
  du decimal(20,0) unsigned DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO decimal_values VALUES
  (1, 99999999999999999999999999999999999.999999999999999999999999999999, 99999999.99, 99999999999999999999),
  (2, -99999999999999999999999999999999999.999999999999999999999999999999, -99999999.99, 0),
  (3, 0.000000000000000000000000000001, 0.01, 1),
  (4, 0, 0, NULL), (5, NULL, NULL, NULL);
INSERT INTO decimal_values WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 200)
SELECT 100 + i, i / 7, i / 3, i * 1000003 FROM seq;

-- zero dates (only PostgreSQL-incompatible rows; ordinary dates live in datetime_values)
CREATE TABLE zero_dates (
  id int NOT NULL,
  d date DEFAULT NULL,
  dt datetime DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO zero_dates VALUES (1, '0000-00-00', '0000-00-00 00:00:00'), (2, '2024-00-15', '2024-00-15 10:00:00'),
  (3, '2024-05-00', '2024-05-00 00:00:01'), (4, '2024-05-01', '2024-05-01 12:00:00');

-- ordinary date and time values
CREATE TABLE datetime_values (
  id int NOT NULL,
  dt6 datetime(6) DEFAULT NULL,
  ts6 timestamp(6) NULL DEFAULT NULL,
  d date DEFAULT NULL,
  t6 time(6) DEFAULT NULL,
  y year(4) DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO datetime_values VALUES
  (1, '2024-02-29 23:59:59.999999', '2024-02-29 23:59:59.999999', '2024-02-29', '23:59:59.999999', 2024),
  (2, '1000-01-01 00:00:00', '1970-01-01 00:00:01', '1000-01-01', '-838:59:59', 1901),
  (3, '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '9999-12-31', '838:59:59', 2155),
  (4, NULL, NULL, NULL, NULL, NULL);
INSERT INTO datetime_values WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 300)
SELECT 100 + i, TIMESTAMP('2020-01-01') + INTERVAL i * 86401 SECOND + INTERVAL i MICROSECOND,
       TIMESTAMP('2022-01-01') + INTERVAL i HOUR, DATE('1999-12-31') + INTERVAL i DAY, SEC_TO_TIME(i * 61), 1901 + i % 255 FROM seq;

-- JSON: big numbers, key order, duplicate keys, whitespace, JSON null vs SQL NULL
CREATE TABLE json_docs (
  id int NOT NULL,
  doc json DEFAULT NULL,
  note varchar(40) DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO json_docs VALUES
  (1, '{"b":1,"a":2}', 'key order'),
  (2, '{"a":1,"a":2}', 'duplicate keys'),
  (3, '{ "a" : [ 1, 2 ,3 ],\t"b":{} }', 'whitespace'),
  (4, '{"big":12345678901234567890123,"s":"a\\nb"}', 'big number, escape'),
  (5, '[0.1000000000000000055511151231257827, -0, 1E2, 18446744073709551616]', 'precise numbers'),
  (6, 'null', 'JSON null'),
  (7, NULL, 'SQL NULL'),
  (8, '"\\u00e9\\ud83c\\udf89 🎉"', 'unicode escapes'),
  (9, '[]', 'empty array');
INSERT INTO json_docs WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 200)
SELECT 100 + i, JSON_OBJECT('i', i, 'name', CONCAT('doc ', i), 'tags', JSON_ARRAY('x', i)), NULL FROM seq;

-- ENUM and SET
CREATE TABLE enum_set_values (
  id int NOT NULL,
  size enum('S','M','L','XL') DEFAULT NULL,
  perms set('read','write','admin') NOT NULL DEFAULT '',
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO enum_set_values VALUES (1, 'S', ''), (2, 'XL', 'read,write,admin'), (3, NULL, 'admin'), (4, 'M', 'write,read');

-- VIRTUAL and STORED generated columns, an index on the stored one
CREATE TABLE line_totals (
  id int NOT NULL AUTO_INCREMENT,
  price decimal(10,2) NOT NULL,
  qty int NOT NULL,
  total decimal(12,2) AS (price * qty) VIRTUAL,
  total_stored decimal(12,2) AS (price * qty) STORED,
  PRIMARY KEY (id),
  KEY line_totals_total_idx (total_stored)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO line_totals (price, qty) WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 300)
SELECT i * 1.25, i % 7 FROM seq;

-- text and binary: emoji, latin1, CHAR, VARBINARY, BLOB
CREATE TABLE texts (
  id int NOT NULL,
  body text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  latin1_col varchar(50) CHARACTER SET latin1 DEFAULT NULL,
  code char(8) DEFAULT NULL,
  raw varbinary(16) DEFAULT NULL,
  blob_col blob,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO texts VALUES
  (1, '🎉 emoji, 名前, ünï', CONVERT('café' USING latin1), 'AB', 0x00FF10, X''),
  (2, '', '', '', X'', NULL),
  (3, 'tab\tnewline\nquote\'back\\slash', CONVERT('€uro' USING latin1), 'ABCDEFGH', 0xDEADBEEF, 0x000102),
  (4, NULL, NULL, NULL, NULL, NULL);
INSERT INTO texts WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 200)
SELECT 100 + i, REPEAT(CONCAT('line ', i, ' '), 1 + i % 20), CONCAT('l', i), CONCAT('c', i), UNHEX(MD5(i)), UNHEX(REPEAT(MD5(i), 4)) FROM seq;

-- no key, duplicate rows
CREATE TABLE access_log (
  at datetime NOT NULL,
  ip varchar(45) DEFAULT NULL,
  path text NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO access_log WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 500)
SELECT TIMESTAMP('2024-01-01') + INTERVAL (i DIV 3) MINUTE, CONCAT('10.0.0.', i % 5), '/home' FROM seq;

-- orders and a composite key with a FK
CREATE TABLE orders (
  id bigint NOT NULL AUTO_INCREMENT,
  user_id int unsigned NOT NULL,
  placed_at datetime(3) NOT NULL,
  total decimal(12,2) NOT NULL DEFAULT 0.00,
  PRIMARY KEY (id),
  KEY orders_user_idx (user_id),
  CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO orders (user_id, placed_at, total) WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 1500)
SELECT 1 + i % 400, TIMESTAMP('2023-01-01') + INTERVAL i * 3727 SECOND + INTERVAL (i % 1000) * 1000 MICROSECOND, (i * 1234 % 99999) / 100 FROM seq;
CREATE TABLE order_items (
  order_id bigint NOT NULL,
  line_no smallint NOT NULL,
  sku varchar(20) NOT NULL,
  qty int NOT NULL CHECK (qty > 0),
  PRIMARY KEY (order_id, line_no),
  CONSTRAINT order_items_order_fk FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO order_items WITH RECURSIVE seq (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < 3999)
SELECT 1 + i DIV 3, 1 + i % 3, CONCAT('SKU-', i % 97), 1 + i % 5 FROM seq;

-- decimal key
CREATE TABLE price_points (
  price decimal(10,2) NOT NULL,
  label varchar(40) NOT NULL,
  PRIMARY KEY (price)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO price_points VALUES (-0.01, 'negative'), (0.00, 'zero'), (0.10, 'dime'), (99999999.99, 'max'), (9.90, 'nine ninety'), (10.00, 'ten');

-- date key
CREATE TABLE calendar_days (
  day date NOT NULL,
  is_holiday tinyint(1) NOT NULL DEFAULT 0,
  name varchar(60) DEFAULT NULL,
  PRIMARY KEY (day)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO calendar_days WITH RECURSIVE seq (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < 730)
SELECT DATE('2024-01-01') + INTERVAL i DAY, IF(i % 7 = 0, 1, 0), IF(i % 30 = 0, CONCAT('day ', i), NULL) FROM seq;

-- self-reference
CREATE TABLE categories (
  id int NOT NULL AUTO_INCREMENT,
  parent_id int DEFAULT NULL,
  name varchar(80) NOT NULL,
  PRIMARY KEY (id),
  KEY categories_parent_idx (parent_id),
  CONSTRAINT categories_parent_fk FOREIGN KEY (parent_id) REFERENCES categories (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO categories (id, parent_id, name) WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 60)
SELECT i, IF(i <= 5, NULL, 1 + i % 5), CONCAT('Category ', i) FROM seq;

-- a foreign key cycle
CREATE TABLE authors (
  id int NOT NULL AUTO_INCREMENT,
  name varchar(80) NOT NULL,
  favorite_book_id int DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE books (
  id int NOT NULL AUTO_INCREMENT,
  author_id int NOT NULL,
  title varchar(200) NOT NULL,
  published date DEFAULT NULL,
  PRIMARY KEY (id),
  CONSTRAINT books_author_fk FOREIGN KEY (author_id) REFERENCES authors (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
ALTER TABLE authors ADD CONSTRAINT authors_favorite_fk FOREIGN KEY (favorite_book_id) REFERENCES books (id);
INSERT INTO authors (id, name) WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 40)
SELECT i, CONCAT('Author ', i) FROM seq;
INSERT INTO books (id, author_id, title, published) WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 120)
SELECT i, 1 + i % 40, CONCAT('Book ', i), DATE('1990-01-01') + INTERVAL i * 50 DAY FROM seq;
UPDATE authors SET favorite_book_id = id + 40 WHERE id % 2 = 0;

-- reserved words and spaces in names
CREATE TABLE `order` (
  `key` int NOT NULL,
  `group` varchar(20) DEFAULT NULL,
  `select` text,
  PRIMARY KEY (`key`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO `order` WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 50)
SELECT i, CONCAT('g', i % 4), CONCAT('pick ', i) FROM seq;
CREATE TABLE `line items` (
  `line id` int NOT NULL AUTO_INCREMENT,
  `order key` int DEFAULT NULL,
  `unit price` decimal(8,2) DEFAULT NULL,
  PRIMARY KEY (`line id`),
  CONSTRAINT `line items order fk` FOREIGN KEY (`order key`) REFERENCES `order` (`key`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO `line items` (`order key`, `unit price`) WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 150)
SELECT 1 + i % 50, i * 0.25 FROM seq;

-- a view: not data
CREATE VIEW active_users AS SELECT id, email, display_name FROM users WHERE status = 'active';
ANALYZE TABLE users, orders, order_items;
