export { inCI, probeService, serviceUrls, sharedDatasetsDir } from './services.js';
