// No native extractor: msgpackr sees a falsy module and decodes in JavaScript.
module.exports = null;
