export * from './errors.js';
export * from './message.js';
export * from './profile.js';
export * from './authenticator.js';
export * from './service.js';
export * from './request-signing.js';
export * from './response-signature.js';
