export { type AdapterHarness, describeAdapterConformance, expectSameRecord } from './conformance.js';
export { inCI, probeService, serviceUrls, sharedDatasetsDir } from './services.js';
