export { inCI, probeService, serviceUrls, sharedDatasetsDir } from './services.js';
export { type AdapterHarness, describeAdapterConformance, expectSameRecord } from './conformance.js';
