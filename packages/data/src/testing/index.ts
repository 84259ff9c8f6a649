export { type AdapterHarness, describeAdapterConformance, expectSameRecord } from './conformance.js';
export { abortWhileWaiting, inCI, probeService, serviceUrls, sharedDatasetsDir } from './services.js';
