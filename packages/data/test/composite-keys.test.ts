import { createMemoryAdapter, t } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { describe, expect, it } from 'vitest';

describe('composite keys', () => {
  const Line = buildSchema(
    {
      name: 'PlaylistTrackLike',
      key: 'playlistId',
      keyFields: ['playlistId', 'trackId'],
      fields: { playlistId: t.integer(), trackId: t.integer() },
    },
    'introspected',
  );

  it('are refused by single-key adapters with an error naming the providers that support them', async () => {
    const a = createMemoryAdapter();
    await a.init();
    await expect(a.ensureEntity(Line, 'root')).rejects.toMatchObject({
      code: 'UNSUPPORTED_KEY',
      message: expect.stringMatching(/SQLite, PostgreSQL or MariaDB/),
    });
    await a.close();
  });
});
