/**
 * A MariaDB database no one on this project wrote: every column type the adapter maps, edge values, and the
 * structures a copy must keep (AUTO_INCREMENT counters, ON UPDATE, generated columns, checks, unique and secondary
 * indexes, self and cyclic foreign keys, composite, decimal, date, binary, ENUM and BIT keys, a table without a key,
 * a view and a trigger). Loaded with the `mysql` CLI.
 */
export const VARIED_SCHEMA = `
SET foreign_key_checks = 0;
SET sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO';
SET time_zone = '+00:00';

CREATE TABLE kinds (
  id INT NOT NULL AUTO_INCREMENT,
  flag TINYINT(1) NOT NULL DEFAULT 0,
  small SMALLINT UNSIGNED DEFAULT NULL,
  med MEDIUMINT DEFAULT NULL,
  zf INT(6) UNSIGNED ZEROFILL DEFAULT NULL,
  big BIGINT DEFAULT NULL,
  ubig BIGINT UNSIGNED DEFAULT NULL,
  b1 BIT(1) DEFAULT NULL,
  b12 BIT(12) DEFAULT NULL,
  f FLOAT DEFAULT NULL,
  d DOUBLE DEFAULT NULL,
  dec65 DECIMAL(65,30) DEFAULT NULL,
  dz DATE DEFAULT NULL,
  dt6 DATETIME(6) DEFAULT NULL,
  dt0 DATETIME DEFAULT '0000-00-00 00:00:00',
  tm TIME(3) DEFAULT NULL,
  yr YEAR DEFAULT NULL,
  en ENUM('small','medium','large') DEFAULT 'small',
  st SET('a','b','c') DEFAULT NULL,
  js JSON DEFAULT NULL,
  txt TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
  vc VARCHAR(40) DEFAULT NULL,
  bin VARBINARY(16) DEFAULT NULL,
  fixed BINARY(4) DEFAULT NULL,
  blb BLOB,
  geo POINT DEFAULT NULL,
  ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  gv INT AS (CHAR_LENGTH(vc)) VIRTUAL,
  gs VARCHAR(50) AS (UPPER(vc)) STORED,
  PRIMARY KEY (id),
  UNIQUE KEY uk_vc (vc),
  KEY idx_dt (dt6, f),
  CONSTRAINT chk_small CHECK (small IS NULL OR small <= 65535)
) ENGINE=InnoDB AUTO_INCREMENT=1000 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci COMMENT='every kind of column';

INSERT INTO kinds (id, flag, small, med, zf, big, ubig, b1, b12, f, d, dec65, dz, dt6, dt0, tm, yr, en, st, js, txt, vc, bin, fixed, blb, geo, ts) VALUES
 (0, 0, 0, -8388608, 42, -9223372036854775808, 18446744073709551615, b'0', b'000000000001', 16777216, 0.1,
  '12345678901234567890123456789012345.123456789012345678901234567890', '0000-00-00', '2024-00-15 10:00:00.123456',
  '0000-00-00 00:00:00', '-838:59:59.000', 0, 'medium', 'a,c',
  '{"z":1, "big":12345678901234567890123,"a":[1.0,1E2,-0.000],"dup":1,"dup":2}', 'tab\\there é', 'zero id', X'00FF', X'00010200', X'DEADBEEF',
  ST_GeomFromText('POINT(1 2)', 4326), '2001-02-03 04:05:06.789'),
 (1, 1, 65535, 8388607, NULL, 9223372036854775807, 0, b'1', b'101010101010', 0.1, 0.30000000000000004,
  '-0.000000000000000000000000000001', '2024-00-00', '0000-00-00 00:00:00.000000', '2024-02-29 23:59:59', '838:59:59.999', 2155, 'large', '',
  'null', 'emoji 😀 and 日本', 'one', X'', X'FFFFFFFF', NULL, ST_GeomFromText('POINT(-71.06 42.36)', 4326), '2038-01-19 03:14:07.999'),
 (2, 5, NULL, NULL, NULL, NULL, 9223372036854775808, NULL, NULL, -3.4028234663852886e38, 1e300, NULL, '1000-01-01', '9999-12-31 23:59:59.999999',
  NULL, '00:00:00.000', 1901, NULL, NULL, NULL, NULL, 'five', NULL, NULL, NULL, NULL, '1970-01-01 00:00:01.000'),
 (3, -1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1.401298464324817e-45, 5e-324, '0.5', '2024-02-29', NULL, NULL, NULL, NULL, NULL, 'a,b,c',
  '  [ 1 ,\\n 2 ]  ', '', NULL, NULL, NULL, NULL, NULL, '2024-05-01 12:00:00.000');
INSERT INTO kinds (flag, vc, ts) VALUES (0, 'default id', '2020-01-01 00:00:00.000');

CREATE TABLE bigkeys (
  id BIGINT NOT NULL,
  label VARCHAR(20) NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
INSERT INTO bigkeys VALUES (9007199254740992, 'two^53'), (9007199254740993, 'two^53+1'), (-9223372036854775808, 'min'),
 (9223372036854775807, 'max'), (0, 'zero');

CREATE TABLE ukeys (
  id BIGINT UNSIGNED NOT NULL,
  note VARCHAR(10) DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
INSERT INTO ukeys VALUES (18446744073709551615, 'max'), (9223372036854775808, 'half'), (0, 'zero'), (18446744073709551614, 'max-1');

CREATE TABLE deckeys (
  amount DECIMAL(20,4) NOT NULL,
  label VARCHAR(10) NOT NULL,
  PRIMARY KEY (amount)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
INSERT INTO deckeys VALUES (-1.5, 'neg'), (0, 'zero'), (0.0001, 'tiny'), (10, 'ten'), (9.9999, 'nine'), (9999999999999999.9999, 'huge');

CREATE TABLE datekeys (
  day DATE NOT NULL,
  seq INT NOT NULL,
  at DATETIME(6) DEFAULT NULL,
  PRIMARY KEY (day, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
INSERT INTO datekeys VALUES ('0000-00-00', 1, '0000-00-00 00:00:00'), ('2024-00-15', 1, NULL), ('2024-02-29', 1, '2024-02-29 12:00:00.5'),
 ('2024-02-29', 2, NULL), ('9999-12-31', 7, '9999-12-31 23:59:59.999999');

CREATE TABLE binkeys (
  k VARBINARY(16) NOT NULL,
  v INT DEFAULT NULL,
  PRIMARY KEY (k)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
INSERT INTO binkeys VALUES (X'00', 1), (X'0000', 2), (X'FF', 3), (X'7F', 4), (X'', 5);

CREATE TABLE enumkeys (
  kind ENUM('zeta','alpha','mid') NOT NULL,
  n INT NOT NULL,
  PRIMARY KEY (kind, n)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
INSERT INTO enumkeys VALUES ('zeta', 2), ('zeta', 1), ('alpha', 1), ('mid', 3), ('alpha', 2);

CREATE TABLE bitkeys (
  k BIT(8) NOT NULL,
  v VARCHAR(5) DEFAULT NULL,
  PRIMARY KEY (k)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
INSERT INTO bitkeys VALUES (b'00000000', 'zero'), (b'11111111', 'all'), (b'00000010', 'two'), (b'10000000', 'high');

CREATE TABLE nokey (
  a INT DEFAULT NULL,
  b VARCHAR(20) DEFAULT NULL,
  c DATETIME DEFAULT NULL,
  KEY idx_a (a)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
INSERT INTO nokey VALUES (1, 'same', '2024-01-01 00:00:00'), (1, 'same', '2024-01-01 00:00:00'), (NULL, NULL, NULL), (2, 'other', '0000-00-00 00:00:00');

CREATE TABLE tree (
  id INT NOT NULL AUTO_INCREMENT,
  parent_id INT DEFAULT NULL,
  name VARCHAR(50) NOT NULL,
  PRIMARY KEY (id),
  KEY fk_parent (parent_id),
  CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES tree (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
INSERT INTO tree (id, parent_id, name) VALUES (1, 3, 'child of a later row'), (2, NULL, 'root'), (3, 2, 'middle');

CREATE TABLE a_side (
  id INT NOT NULL,
  b_id INT DEFAULT NULL,
  PRIMARY KEY (id),
  KEY fk_a_b (b_id),
  CONSTRAINT fk_a_b FOREIGN KEY (b_id) REFERENCES b_side (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
CREATE TABLE b_side (
  id INT NOT NULL,
  a_id INT DEFAULT NULL,
  PRIMARY KEY (id),
  KEY fk_b_a (a_id),
  CONSTRAINT fk_b_a FOREIGN KEY (a_id) REFERENCES a_side (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
INSERT INTO a_side VALUES (1, 10), (2, NULL);
INSERT INTO b_side VALUES (10, 1), (20, 2);

CREATE TABLE order_lines (
  order_id INT NOT NULL,
  line_no SMALLINT NOT NULL,
  sku VARCHAR(20) NOT NULL,
  qty INT NOT NULL DEFAULT 1,
  PRIMARY KEY (order_id, line_no),
  UNIQUE KEY uk_sku (sku, order_id),
  KEY idx_qty (qty),
  CONSTRAINT chk_qty CHECK (qty > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
INSERT INTO order_lines VALUES (1, 1, 'A', 2), (1, 2, 'B', 1), (2, 1, 'A', 5), (10, 1, 'C', 1);

CREATE TABLE texts (
  id INT NOT NULL AUTO_INCREMENT,
  s VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL,
  l LONGTEXT DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB AUTO_INCREMENT=50 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
INSERT INTO texts (id, s, l) VALUES (7, 'emoji 😀🎉', REPEAT('long é ', 5000)), (8, 'quote '' " \\\\ back', 'line\\nbreak\\ttab'), (9, '', NULL);

CREATE VIEW v_kinds AS SELECT id, vc, flag FROM kinds WHERE flag <> 0;
CREATE TRIGGER trg_texts BEFORE UPDATE ON texts FOR EACH ROW SET NEW.s = NEW.s;
SET foreign_key_checks = 1;
`;

/** The tables of {@link VARIED_SCHEMA}, and the AUTO_INCREMENT column and next value of those that have one. */
export const VARIED_TABLES = [
  'a_side',
  'b_side',
  'bigkeys',
  'binkeys',
  'bitkeys',
  'datekeys',
  'deckeys',
  'enumkeys',
  'kinds',
  'nokey',
  'order_lines',
  'texts',
  'tree',
  'ukeys',
] as const;
