import { StorageProfiles } from '@koan/storage';
import { describeStorageConformance, patternBody, readAll } from '@koan/storage/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureBlobStorage, createAzureBlobStorage } from '../src/index.js';
import { type AzuriteHandle, startAzurite } from './azurite-harness.js';

const MiB = 1024 * 1024;
let server: AzuriteHandle;

describeStorageConformance({
  name: 'azure-blob (azurite)',
  create: async () => {
    server = await startAzurite();
    return createAzureBlobStorage({
      connectionString: server.connectionString(),
      containerName: 'koan-test',
      createContainer: true,
      prefix: 'pfx',
      blockSizeBytes: 4 * MiB,
      profile: 'azure-test',
      retryBaseDelayMs: 10,
    });
  },
  destroy: async () => server?.stop(),
  largeBytes: 9 * MiB + 17,
  failAfterBytes: 6 * MiB,
  additionalTests: ({ driver, prefix }) => {
    it('lists an upload that crashed before commit and drops it with abortIncomplete', async () => {
      const key = `${prefix}incomplete/left.bin`;
      // What a process killed between stageBlock and commitBlockList leaves behind.
      const az = driver() as AzureBlobStorage;
      await az
        .getInstance()
        .getBlockBlobClient(`pfx/${key}`)
        .stageBlock(Buffer.alloc(16).toString('base64'), Buffer.from('abc'), 3);
      expect(await driver().head(key)).toBeUndefined();
      const found = [];
      for await (const u of driver().listIncomplete!()) if (u.key === key) found.push(u);
      expect(found).toHaveLength(1);
      await driver().abortIncomplete!(found[0]!);
      const left = [];
      for await (const u of driver().listIncomplete!()) if (u.key === key) left.push(u);
      expect(left).toEqual([]);
      expect(await driver().head(key)).toBeUndefined();
    });

    it('cancels in-flight block uploads when the body fails', async () => {
      const key = `${prefix}incomplete/failed.bin`;
      async function* failing() {
        yield* patternBody(5 * MiB);
        throw new Error('source broke');
      }
      await expect(driver().put(key, failing())).rejects.toMatchObject({ code: 'IO' });
      expect(await driver().head(key)).toBeUndefined();
    });

    it('does not list a committed blob as incomplete', async () => {
      await driver().put(`${prefix}incomplete/ok.txt`, [Buffer.from('ok')]);
      for await (const u of driver().listIncomplete!()) expect(u.key).not.toBe(`${prefix}incomplete/ok.txt`);
    });

    it('keeps blob names under the prefix', async () => {
      const az = driver() as AzureBlobStorage;
      await az.put(`${prefix}p.txt`, [Buffer.from('p')]);
      const names = [];
      for await (const b of az.getInstance().listBlobsFlat({ prefix: `pfx/${prefix}p.txt` })) names.push(b.name);
      expect(names).toEqual([`pfx/${prefix}p.txt`]);
    });
  },
});

describe('azure-blob errors and profiles (azurite)', () => {
  let azurite: AzuriteHandle;
  beforeAll(async () => {
    azurite = await startAzurite();
  });
  afterAll(async () => azurite?.stop());

  it('maps a missing container to BUCKET_NOT_FOUND', async () => {
    const az = createAzureBlobStorage({
      connectionString: azurite.connectionString(),
      containerName: 'absent',
      profile: 'p',
    });
    await expect(az.put('k', patternBody(10))).rejects.toMatchObject({ code: 'BUCKET_NOT_FOUND', profile: 'p' });
  });

  it('maps a wrong key to ACCESS_DENIED', async () => {
    const az = createAzureBlobStorage({
      accountName: 'devstoreaccount1',
      accountKey: Buffer.from('wrong key wrong key wrong key wrong key').toString('base64'),
      url: azurite.blobEndpoint,
      containerName: 'absent',
      maxRetries: 0,
    });
    await expect(az.head('k')).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
  });

  it('is reachable through a storage profile (spec config shape)', async () => {
    const profiles = await StorageProfiles.load({
      profiles: {
        'disaster-recovery': {
          provider: 'azure-blob',
          settings: {
            connectionString: azurite.connectionString(),
            containerName: 'disaster-recovery',
            createContainer: 'true',
          },
        },
      },
    });
    const storage = profiles.get('disaster-recovery');
    await storage.put('dr.txt', [Buffer.from('dr')]);
    expect((await readAll(await storage.get('dr.txt'))).toString()).toBe('dr');
    await profiles.close();
  });

  it('names the missing setting', async () => {
    await expect(
      StorageProfiles.load({ profiles: { dr: { provider: 'azure-blob', settings: { containerName: 'x-y' } } } }),
    ).rejects.toThrow(/Koan\.Storage\.Profiles\.dr\.Settings\.ConnectionString/);
  });
});
