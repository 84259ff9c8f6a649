export { type AdapterHarness, describeAdapterConformance, expectSameRecord } from './conformance.js';
export { abortWhileWaiting, inCI, probeService, serviceUrls, sharedDatasetsDir } from './services.js';
export { describeSingleKeyStore, type SingleKeyStoreHarness } from './single-key-stores.js';
