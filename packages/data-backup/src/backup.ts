// The backup engine lives in ./backup/ (options, destination, archive assembler, run); this keeps its public names here.
export {
  type BackupOptions,
  type BackupResult,
  backupAllEntities,
  backupEntity,
  type GlobalBackupOptions,
  runBackup,
} from './backup/index.js';
